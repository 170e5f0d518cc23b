/**
 * Retrieval ("search") family: the image tower embeds image windows, the text tower embeds
 * queries. Pixels are read here, in the worker, from the dropped File itself, so indexing a
 * large image never blocks the map.
 */
import * as Comlink from 'comlink';
import { exposeModelWorker, ModelWorkerHost } from './modelWorkerHost';
import type { SearchWorkerApi, EmbedWindowsResult, TextEmbeddings } from './searchWorkerApi';
import { RasterSourceCache } from './rasterSourceCache';
import { embedWindows, embedTexts, hubnessPenalties } from '../core/retrieval/embed';
import { RetrievalTokenizer, type CompactVocab } from '../core/text/tokenizer';
import type { PixelWindow } from '../core/raster/types';
import type { TensorMap } from '../core/models/tensor';

class SearchWorkerHost extends ModelWorkerHost implements SearchWorkerApi {
  private readonly sources = new RasterSourceCache();
  private readonly tokenizers = new Map<string, Promise<RetrievalTokenizer>>();
  private readonly cancelled = new Set<string>();

  private tokenizer(modelId: string): Promise<RetrievalTokenizer> {
    let pending = this.tokenizers.get(modelId);
    if (!pending) {
      pending = (async () => {
        const [tokenizer, config, vocab] = await Promise.all([
          this.auxiliaryJson<object>(modelId, 'tokenizer', 'tokenizer.json'),
          this.auxiliaryJson<object>(modelId, 'config', 'tokenizer_config'),
          this.auxiliaryJson<CompactVocab>(modelId, 'tokenizer', 'vocab'),
        ]);
        return new RetrievalTokenizer(tokenizer, config, vocab);
      })();
      this.tokenizers.set(modelId, pending);
      pending.catch(() => this.tokenizers.delete(modelId));
    }
    return pending;
  }

  private runner(modelId: string) {
    return async (feeds: TensorMap) => (await this.run(modelId, feeds)).outputs;
  }

  async embedTexts(modelId: string, texts: string[]): Promise<TextEmbeddings> {
    const t0 = performance.now();
    const tokenizer = await this.tokenizer(modelId);
    const result = await embedTexts(tokenizer, this.runner(modelId), texts);
    const coverage = texts.map((t) => tokenizer.coverage(t));
    return Comlink.transfer({ ...result, ms: performance.now() - t0, coverage }, [result.vectors.buffer as ArrayBuffer]);
  }

  async embedWindows(
    modelId: string,
    file: Blob,
    name: string,
    windows: PixelWindow[],
    jobId: string,
    onProgress?: (done: number) => void,
  ): Promise<EmbedWindowsResult> {
    this.cancelled.delete(jobId);
    const source = await this.sources.get(file, name);
    const entry = await this.entryOf(modelId);
    const result = await embedWindows(entry, source, windows, this.runner(modelId), {
      isCancelled: () => this.cancelled.has(jobId),
      onProgress,
    });
    this.cancelled.delete(jobId);
    return Comlink.transfer(result, [result.vectors.buffer as ArrayBuffer]);
  }

  async hubnessPenalties(modelId: string, vectors: Float32Array, dim: number): Promise<Float32Array> {
    const penalties = await hubnessPenalties(this.runner(modelId), vectors, dim);
    return Comlink.transfer(penalties, [penalties.buffer as ArrayBuffer]);
  }

  async cancel(jobId: string): Promise<void> {
    this.cancelled.add(jobId);
  }
}

exposeModelWorker(new SearchWorkerHost());
