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

/** Embeds each window of `source` with the image tower (read at the model's input size). */
export async function embedWindows(
  entry: ModelEntry,
  source: RasterSource,
  windows: PixelWindow[],
  run: RunModel,
  options: EmbedWindowsOptions = {},
): Promise<EmbedWindowsResult> {
  const { width, height, norm } = imageInputOf(entry);
  const batchSize = hasDynamicBatch(entry) ? (options.batchSize ?? 4) : 1;
  const inputName = entry.inputs[0].name;
  const perImage = 3 * width * height;
  const chunks: Float32Array[] = [];
  let dim = 0;
  let completed = 0;
  for (let start = 0; start < windows.length; start += batchSize) {
    if (options.isCancelled?.()) break;
    const batch = windows.slice(start, start + batchSize);
    const pixels = new Float32Array(batch.length * perImage);
    for (let i = 0; i < batch.length; i++) {
      const rgba = await readRgbaWindow(source, batch[i], width, height);
      toModelTensor(rgba, norm, pixels, i * perImage);
    }
    const outputs = await run({ [inputName]: { dtype: 'float32', dims: [batch.length, 3, height, width], data: pixels } });
    const embedding = outputs[IMAGE_OUTPUT];
    if (!embedding) throw new Error(`Model "${entry.id}" produced no "${IMAGE_OUTPUT}" output`);
    dim = embedding.dims[embedding.dims.length - 1];
    chunks.push(embedding.data as Float32Array);
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
