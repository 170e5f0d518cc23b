/**
 * Cross-modal retrieval metrics as used for RSICD: image→text and text→image recall at
 * K = 1, 5, 10 and their mean (mR). `similarity` is row-major [images × texts];
 * `textImage[t]` is the image that caption t describes.
 */
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
