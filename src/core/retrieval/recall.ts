/**
 * Cross-modal retrieval metrics as used for RSICD: image→text and text→image recall at
 * K = 1, 5, 10 and their mean (mR). `similarity` is row-major [images × texts];
 * `textImage[t]` is the image that caption t describes. Also a class-level precision for
 * image→image search.
 */
import { rowOf, topK } from './rank';

export interface RecallReport {
  imageToText: { r1: number; r5: number; r10: number };
  textToImage: { r1: number; r5: number; r10: number };
  /** Mean of the six recalls, in percent like the other fields. */
  meanRecall: number;
}

const KS = [1, 5, 10] as const;

/**
 * Rank (0-based) of the best of `targets` in a stable descending sort of `scores`: higher
 * scores rank ahead, and equal scores keep index order (what the usual argsort-based RSICD
 * evaluation code does; duplicate captions give exact ties).
 */
function bestRank(scores: ArrayLike<number>, targets: number[]): number {
  let best = Infinity;
  for (const target of targets) {
    const s = scores[target];
    let rank = 0;
    for (let i = 0; i < scores.length; i++) if (scores[i] > s || (scores[i] === s && i < target)) rank++;
    best = Math.min(best, rank);
  }
  return best;
}

export function recallAtK(similarity: Float32Array | number[], imageCount: number, textImage: number[]): RecallReport {
  const textCount = textImage.length;
  if (similarity.length !== imageCount * textCount) throw new Error(`similarity has ${similarity.length} entries, expected ${imageCount}×${textCount}`);
  const textsOf: number[][] = Array.from({ length: imageCount }, () => []);
  textImage.forEach((img, t) => textsOf[img].push(t));

  const i2tRanks: number[] = [];
  for (let i = 0; i < imageCount; i++) {
    const row = Array.prototype.slice.call(similarity, i * textCount, (i + 1) * textCount) as number[];
    i2tRanks.push(bestRank(row, textsOf[i]));
  }
  const t2iRanks: number[] = [];
  const column = new Array<number>(imageCount);
  for (let t = 0; t < textCount; t++) {
    for (let i = 0; i < imageCount; i++) column[i] = similarity[i * textCount + t];
    t2iRanks.push(bestRank(column, [textImage[t]]));
  }
  const recall = (ranks: number[], k: number) => (100 * ranks.filter((r) => r < k).length) / ranks.length;
  const imageToText = { r1: recall(i2tRanks, 1), r5: recall(i2tRanks, 5), r10: recall(i2tRanks, 10) };
  const textToImage = { r1: recall(t2iRanks, 1), r5: recall(t2iRanks, 5), r10: recall(t2iRanks, 10) };
  const all = KS.flatMap((k) => [recall(i2tRanks, k), recall(t2iRanks, k)]);
  return { imageToText, textToImage, meanRecall: all.reduce((a, b) => a + b, 0) / all.length };
}

/**
 * Image→image search quality when only scene classes are known: for each row of `vectors`
 * (L2-normalised embeddings, `dim` columns), the share of its k nearest *other* rows with the
 * same label, averaged over rows, in percent, for each k of `ks`.
 */
export function classPrecisionAtK(vectors: Float32Array, dim: number, labels: number[], ks: readonly number[] = [1, 5, 10]): Record<number, number> {
  const rows = labels.length;
  if (vectors.length !== rows * dim) throw new Error(`vectors hold ${vectors.length / dim} rows, labels ${rows}`);
  const maxK = Math.max(...ks);
  const sums = ks.map(() => 0);
  for (let r = 0; r < rows; r++) {
    const hits = topK(vectors, dim, rowOf(vectors, dim, r), maxK, (other) => other !== r);
    ks.forEach((k, i) => {
      const top = hits.slice(0, k);
      sums[i] += top.filter((h) => labels[h.index] === labels[r]).length / Math.max(top.length, 1);
    });
  }
  return Object.fromEntries(ks.map((k, i) => [k, (100 * sums[i]) / Math.max(rows, 1)]));
}
