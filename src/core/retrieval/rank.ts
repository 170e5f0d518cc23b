import { windowsOverlap } from '../raster/tiler';
import type { PixelWindow } from '../raster/types';

/** A ranked hit: row index into the vector matrix and its cosine similarity. */
export interface Hit {
  index: number;
  score: number;
}

/**
 * Top-k rows of `vectors` (row-major, `dim` columns, rows L2-normalised) by dot product
 * with `query`, minus `offsets[row]` when given (a text query's hubness penalty per image).
 * Keeps a small sorted buffer instead of sorting all scores: 10,000×256 takes a few
 * milliseconds. `accept`, when given, leaves out the rows it rejects (e.g. the query image
 * itself in an image→image search).
 */
export function topK(vectors: Float32Array, dim: number, query: Float32Array, k: number, accept?: (row: number) => boolean, offsets?: Float32Array): Hit[] {
  if (query.length !== dim) throw new Error(`query has ${query.length} dimensions, index has ${dim}`);
  const rows = Math.floor(vectors.length / dim);
  if (offsets && offsets.length !== rows) throw new Error(`${offsets.length} offsets for ${rows} rows`);
  const keep = Math.min(k, rows);
  const hits: Hit[] = [];
  for (let r = 0; r < rows; r++) {
    if (accept && !accept(r)) continue;
    let score = 0;
    const base = r * dim;
    for (let d = 0; d < dim; d++) score += vectors[base + d] * query[d];
    if (offsets) score -= offsets[r];
    if (hits.length < keep) {
      hits.push({ index: r, score });
      if (hits.length === keep) hits.sort((a, b) => b.score - a.score);
    } else if (keep > 0 && score > hits[keep - 1].score) {
      // Insert into the sorted buffer, dropping the lowest.
      let i = keep - 1;
      while (i > 0 && hits[i - 1].score < score) {
        hits[i] = hits[i - 1];
        i--;
      }
      hits[i] = { index: r, score };
    }
  }
  if (hits.length < keep || keep === rows) hits.sort((a, b) => b.score - a.score);
  return hits;
}

/** Row `row` of a row-major matrix with `dim` columns (a view, not a copy). */
export function rowOf(vectors: Float32Array, dim: number, row: number): Float32Array {
  return vectors.subarray(row * dim, (row + 1) * dim);
}

/** L2-normalises each row in place (zero rows stay zero). */
export function normaliseRows(vectors: Float32Array, dim: number): Float32Array {
  for (let base = 0; base < vectors.length; base += dim) {
    let norm = 0;
    for (let d = 0; d < dim; d++) norm += vectors[base + d] ** 2;
    norm = Math.sqrt(norm);
    if (norm > 0) for (let d = 0; d < dim; d++) vectors[base + d] /= norm;
  }
  return vectors;
}

/** A row of an index over image windows: which image, which full-res pixel window. */
export interface WindowRow {
  imageId: string;
  window: PixelWindow;
}

/**
 * `accept` for an image → image query with `source` as its example: every row except the
 * windows of the source's image that overlap it (itself included), which share its pixels and
 * would crowd out other places.
 */
export function otherPlaces(rows: readonly WindowRow[], source: WindowRow): (row: number) => boolean {
  return (row) => !(rows[row].imageId === source.imageId && windowsOverlap(rows[row].window, source.window));
}
