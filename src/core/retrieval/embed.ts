/**
 * Embedding with the retrieval towers, independent of the ORT flavour: the browser worker
 * and the Node CLI pass their own `run`, so both embed exactly the same way.
 */
import type { ModelEntry } from '../models/manifest';
import type { TensorMap } from '../models/tensor';
import { hasDynamicBatch, imageInputOf } from '../models/normalisation';
import { readRgbaWindow, toModelTensor } from '../raster/readWindow';
import type { PixelWindow, RasterSource } from '../raster/types';
import type { RetrievalTokenizer } from '../text/tokenizer';
import { dihedralViewCHW } from '../raster/dihedral';
import { normaliseRows } from './rank';

export type RunModel = (feeds: TensorMap) => Promise<TensorMap>;

export interface EmbedWindowsResult {
  /** Row-major [completed × dim], L2-normalised by the model. */
  vectors: Float32Array;
  dim: number;
  /** Windows embedded (all of them unless cancelled). */
  completed: number;
  cancelled: boolean;
}

export interface EmbedWindowsOptions {
  isCancelled?: () => boolean;
  onProgress?: (done: number) => void;
  /** Images per model run when the model takes a dynamic batch. */
  batchSize?: number;
}

const IMAGE_OUTPUT = 'embedding';

/** Joins per-batch outputs into one row-major matrix. */
function concatRows(chunks: Float32Array[], length: number): Float32Array {
  const out = new Float32Array(length);
  chunks.reduce((offset, chunk) => (out.set(chunk, offset), offset + chunk.length), 0);
  return out;
}

/** L2-normalised mean of `views` consecutive rows of `rows` ([n·views × dim]) → [n × dim]. */
export function meanOfViews(rows: Float32Array, dim: number, views: number): Float32Array {
  const n = rows.length / dim / views;
  const out = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const o = out.subarray(i * dim, (i + 1) * dim);
    for (let v = 0; v < views; v++) {
      const r = rows.subarray((i * views + v) * dim, (i * views + v + 1) * dim);
      for (let d = 0; d < dim; d++) o[d] += r[d];
    }
  }
  return normaliseRows(out, dim);
}

/**
 * Embeds each window of `source` with the image tower (read at the model's input size). When the
 * manifest lists `testTimeViews`, every window is run in each of those dihedral views (in the same
 * batch) and its embedding is their normalised mean, as in the model's evaluation.
 */
export async function embedWindows(
  entry: ModelEntry,
  source: RasterSource,
  windows: PixelWindow[],
  run: RunModel,
  options: EmbedWindowsOptions = {},
): Promise<EmbedWindowsResult> {
  const { width, height, norm } = imageInputOf(entry);
  const views = entry.testTimeViews ?? ['id'];
  const dynamic = hasDynamicBatch(entry);
  if (!dynamic && views.length > 1) throw new Error(`Model "${entry.id}" lists test-time views but has a fixed batch of 1`);
  const batchSize = dynamic ? (options.batchSize ?? Math.max(1, Math.round(4 / views.length))) : 1;
  const inputName = entry.inputs[0].name;
  const perImage = 3 * width * height;
  const chunks: Float32Array[] = [];
  const window = new Float32Array(perImage);
  let dim = 0;
  let completed = 0;
  for (let start = 0; start < windows.length; start += batchSize) {
    if (options.isCancelled?.()) break;
    const batch = windows.slice(start, start + batchSize);
    const pixels = new Float32Array(batch.length * views.length * perImage);
    for (let i = 0; i < batch.length; i++) {
      const rgba = await readRgbaWindow(source, batch[i], width, height);
      toModelTensor(rgba, norm, window, 0);
      views.forEach((v, k) => dihedralViewCHW(window, 0, 3, height, width, v, pixels, (i * views.length + k) * perImage));
    }
    const outputs = await run({ [inputName]: { dtype: 'float32', dims: [batch.length * views.length, 3, height, width], data: pixels } });
    const embedding = outputs[IMAGE_OUTPUT];
    if (!embedding) throw new Error(`Model "${entry.id}" produced no "${IMAGE_OUTPUT}" output`);
    dim = embedding.dims[embedding.dims.length - 1];
    const rows = embedding.data as Float32Array;
    chunks.push(views.length > 1 ? meanOfViews(rows, dim, views.length) : rows);
    completed += batch.length;
    options.onProgress?.(completed);
  }
  return { vectors: concatRows(chunks, completed * dim), dim, completed, cancelled: completed < windows.length };
}

export interface TextEmbeddingsResult {
  vectors: Float32Array;
  dim: number;
}

/** Embeds texts with the text tower, in batches of `batchSize`. */
export async function embedTexts(tokenizer: RetrievalTokenizer, run: RunModel, texts: readonly string[], batchSize = 64): Promise<TextEmbeddingsResult> {
  const chunks: Float32Array[] = [];
  let dim = 0;
  for (let start = 0; start < texts.length; start += batchSize) {
    const batch = tokenizer.encodeBatch(texts.slice(start, start + batchSize));
    const outputs = await run({
      input_ids: { dtype: 'int64', dims: batch.dims, data: batch.inputIds },
      attention_mask: { dtype: 'int64', dims: batch.dims, data: batch.attentionMask },
    });
    const embedding = outputs[IMAGE_OUTPUT];
    if (!embedding) throw new Error(`The text tower produced no "${IMAGE_OUTPUT}" output`);
    dim = embedding.dims[embedding.dims.length - 1];
    chunks.push(embedding.data as Float32Array);
  }
  return { vectors: concatRows(chunks, texts.length * dim), dim };
}

/**
 * Hubness penalties of image embeddings ([n × dim] → [n]) with the hubness model (input
 * "embedding", output "penalty"): what a text query's score of each image loses, so images
 * that sit close to many captions stop crowding the top of unrelated queries.
 */
export async function hubnessPenalties(run: RunModel, vectors: Float32Array, dim: number, batchSize = 256): Promise<Float32Array> {
  const rows = vectors.length / dim;
  const out = new Float32Array(rows);
  for (let start = 0; start < rows; start += batchSize) {
    const n = Math.min(batchSize, rows - start);
    const outputs = await run({ embedding: { dtype: 'float32', dims: [n, dim], data: vectors.slice(start * dim, (start + n) * dim) } });
    const penalty = outputs.penalty;
    if (!penalty || penalty.data.length !== n) throw new Error('The hubness model produced no "penalty" output of one value per image');
    out.set(penalty.data as Float32Array, start);
  }
  return out;
}
