import { describe, expect, it } from 'vitest';
import { normaliseRows, otherPlaces, rowOf, topK } from './rank';
import { classPrecisionAtK, recallAtK } from './recall';
import { meanOfViews } from './embed';

describe('topK', () => {
  it('ranks rows by dot product, best first', () => {
    const vectors = normaliseRows(new Float32Array([1, 0, 0, 1, 1, 1, -1, 0]), 2);
    const hits = topK(vectors, 2, new Float32Array([1, 0]), 3);
    expect(hits.map((h) => h.index)).toEqual([0, 2, 1]);
    expect(hits[0].score).toBeCloseTo(1);
    expect(hits[1].score).toBeCloseTo(Math.SQRT1_2);
  });

  it('matches a full sort on random data', () => {
    const dim = 8;
    const rows = 500;
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
    const vectors = normaliseRows(Float32Array.from({ length: rows * dim }, rand), dim);
    const query = normaliseRows(Float32Array.from({ length: dim }, rand), dim);
    const expected = Array.from({ length: rows }, (_, r) => {
      let s = 0;
      for (let d = 0; d < dim; d++) s += vectors[r * dim + d] * query[d];
      return { index: r, score: s };
    }).sort((a, b) => b.score - a.score);
    expect(topK(vectors, dim, query, 10).map((h) => h.index)).toEqual(expected.slice(0, 10).map((h) => h.index));
    expect(topK(vectors, dim, query, 1000)).toHaveLength(rows);
  });

  it('subtracts a per-row offset (the hubness penalty) from each score before ranking', () => {
    const vectors = normaliseRows(new Float32Array([1, 0, 0.9, 0.1, 0, 1]), 2);
    const query = new Float32Array([1, 0]);
    expect(topK(vectors, 2, query, 3).map((h) => h.index)).toEqual([0, 1, 2]);
    const hits = topK(vectors, 2, query, 3, undefined, new Float32Array([0.2, 0, 0]));
    expect(hits.map((h) => h.index)).toEqual([1, 0, 2]);
    expect(hits[1].score).toBeCloseTo(0.8);
    expect(() => topK(vectors, 2, query, 1, undefined, new Float32Array(2))).toThrow(/offsets/);
  });

  it('leaves out the rows that accept rejects, and still returns k', () => {
    const vectors = normaliseRows(new Float32Array([1, 0, 0.9, 0.1, 0, 1, -1, 0]), 2);
    const hits = topK(vectors, 2, rowOf(vectors, 2, 0), 2, (row) => row !== 0);
    expect(hits.map((h) => h.index)).toEqual([1, 2]);
    expect(topK(vectors, 2, rowOf(vectors, 2, 0), 10, (row) => row % 2 === 1).map((h) => h.index)).toEqual([1, 3]);
  });

  it('refuses a query of the wrong size', () => {
    expect(() => topK(new Float32Array(4), 2, new Float32Array(3), 1)).toThrow(/dimensions/);
  });
});

describe('otherPlaces', () => {
  const tile = (imageId: string, x: number, y: number) => ({ imageId, window: { x, y, width: 256, height: 256 } });
  // Tiles of 256 px with 32 px overlap in image a; one whole picture b with the same pixel window as a's first tile.
  const rows = [tile('a', 0, 0), tile('a', 224, 0), tile('a', 448, 0), tile('a', 0, 224), tile('b', 0, 0)];

  it('leaves out the source window and the windows of its image that overlap it, not other images', () => {
    const accept = otherPlaces(rows, rows[0]);
    expect(rows.map((_, r) => accept(r))).toEqual([false, false, true, false, true]);
  });

  it('handles a region that is not an indexed window', () => {
    const region = { imageId: 'a', window: { x: 300, y: 10, width: 100, height: 100 } };
    const accept = otherPlaces(rows, region);
    expect(rows.map((_, r) => accept(r))).toEqual([true, false, true, true, true]);
  });

  it('drives topK: the source never comes back, the next best does', () => {
    const dim = 2;
    const vectors = normaliseRows(new Float32Array([1, 0, 0.9, 0.1, 0, 1, 0.95, 0.05, 0.8, 0.2]), dim);
    const hits = topK(vectors, dim, rowOf(vectors, dim, 0), 5, otherPlaces(rows, rows[0]));
    expect(hits.map((h) => h.index)).toEqual([4, 2]);
  });
});

describe('classPrecisionAtK', () => {
  // Two tight pairs of the same class (0,1: class A; 2,3: class B) and one B image near the A pair.
  const vectors = normaliseRows(new Float32Array([1, 0, 0.95, 0.05, 0, 1, 0.05, 0.95, 0.9, 0.3]), 2);
  const labels = [0, 0, 1, 1, 1];

  it('counts same-class neighbours, never the image itself', () => {
    const p = classPrecisionAtK(vectors, 2, labels, [1, 2]);
    // nearest other: 0→1 (A ok), 1→0 (ok), 2→3 (ok), 3→2 (ok), 4→0 or 1 (wrong): 4 of 5
    expect(p[1]).toBeCloseTo(80);
    // 2 nearest: 0→{1,4}: 1/2; 1→{0,4}: 1/2; 2→{3,4}: 2/2; 3→{2,4}: 2/2; 4→{0,1}: 0/2
    expect(p[2]).toBeCloseTo(60);
  });

  it('refuses labels that do not match the rows', () => {
    expect(() => classPrecisionAtK(vectors, 2, [0, 1])).toThrow(/rows/);
  });
});

describe('recallAtK', () => {
  // 3 images × 6 texts; texts 0,1 → image 0; 2,3 → image 1; 4,5 → image 2.
  const textImage = [0, 0, 1, 1, 2, 2];

  it('is 100 for a perfect similarity matrix', () => {
    const sim = [0.9, 0.8, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.9, 0.8, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.9, 0.8];
    const r = recallAtK(sim, 3, textImage);
    expect(r.imageToText).toEqual({ r1: 100, r5: 100, r10: 100 });
    expect(r.textToImage).toEqual({ r1: 100, r5: 100, r10: 100 });
    expect(r.meanRecall).toBe(100);
  });

  it('counts hand-computed ranks', () => {
    // Image 0: its best text (1, 0.5) is beaten by text 4 (0.9) → rank 1 (misses R@1).
    // Image 1: text 2 is top → rank 0. Image 2: texts 4/5 beaten by 0,1,2,3 → rank 4.
    const sim = [
      0.2, 0.5, 0.1, 0.1, 0.9, 0.0,
      0.1, 0.1, 0.8, 0.3, 0.2, 0.2,
      0.7, 0.7, 0.7, 0.7, 0.3, 0.1,
    ];
    const r = recallAtK(sim, 3, textImage);
    expect(r.imageToText.r1).toBeCloseTo(100 / 3);
    expect(r.imageToText.r5).toBe(100);
    // Text → image: text0 col [0.2,0.1,0.7] → image 0 rank 1; text1 [0.5,0.1,0.7] rank 1;
    // text2 [0.1,0.8,0.7] rank 0; text3 [0.1,0.3,0.7] rank 1; text4 [0.9,0.2,0.3] rank 1; text5 [0,0.2,0.1] rank 1.
    expect(r.textToImage.r1).toBeCloseTo(100 / 6);
    expect(r.textToImage.r5).toBe(100);
    expect(r.meanRecall).toBeCloseTo((100 / 3 + 100 + 100 + 100 / 6 + 100 + 100) / 6);
  });

  it('breaks ties by index order, like a stable argsort', () => {
    // Constant scores: image 0 finds its text 0 first; images 1 and 2 do not. Every text finds image 0 first.
    const r = recallAtK(new Array(18).fill(0.5), 3, textImage);
    expect(r.imageToText.r1).toBeCloseTo(100 / 3);
    expect(r.textToImage.r1).toBeCloseTo(100 / 3);
    expect(r.imageToText.r5).toBe(100);
  });
});

describe('meanOfViews', () => {
  it('averages consecutive view rows per image and renormalises', () => {
    // 2 images × 2 views, dim 2
    const rows = new Float32Array([1, 0, 0, 1, 0.6, 0.8, 0.6, 0.8]);
    const out = meanOfViews(rows, 2, 2);
    expect(out).toHaveLength(4);
    expect(out[0]).toBeCloseTo(Math.SQRT1_2);
    expect(out[1]).toBeCloseTo(Math.SQRT1_2);
    expect(out[2]).toBeCloseTo(0.6);
    expect(out[3]).toBeCloseTo(0.8);
  });
});
