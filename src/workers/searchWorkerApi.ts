import type { ModelWorkerApi } from './modelWorkerApi';
import type { PixelWindow } from '../core/raster/types';
import type { EmbedWindowsResult, TextEmbeddingsResult } from '../core/retrieval/embed';
import type { TextCoverage } from '../core/text/tokenizer';

export type { EmbedWindowsResult };

export interface TextEmbeddings extends TextEmbeddingsResult {
  ms: number;
  /** Per text: the words the tokenizer could not read (outside the vocabulary, or past the length limit). */
  coverage: TextCoverage[];
}

/** The search worker: the generic model API plus the two retrieval towers' jobs. */
export interface SearchWorkerApi extends ModelWorkerApi {
  embedTexts(modelId: string, texts: string[]): Promise<TextEmbeddings>;
  /** Embeds windows of a dropped file; stops early (cancelled: true) after cancel(jobId). */
  embedWindows(modelId: string, file: Blob, name: string, windows: PixelWindow[], jobId: string, onProgress?: (done: number) => void): Promise<EmbedWindowsResult>;
  /** Hubness penalties ([n]) of image embeddings ([n × dim]) with the hubness model `modelId`. */
  hubnessPenalties(modelId: string, vectors: Float32Array, dim: number): Promise<Float32Array>;
  cancel(jobId: string): Promise<void>;
}
