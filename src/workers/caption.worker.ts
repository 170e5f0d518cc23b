/**
 * Caption family: the image encoder's grid of a window, the instruction router and the query
 * module run here; the decoder experts run in caption-expert workers attached over ports, so
 * the experts of one caption decode in parallel. Tokens stream back through `onUpdate`.
 */
import * as Comlink from 'comlink';
import { validateCaptionConfig, type CaptionConfig } from '../core/caption/captionConfig';
import { CaptionTokenizer } from '../core/caption/captionTokenizer';
import type { ExpertDecoder } from '../core/caption/expertDecoder';
import { checkInstruction, gridOfWindow, runInstruction, type InstructionCheck } from '../core/caption/pipeline';
import type { TensorData, TensorMap } from '../core/models/tensor';
import type { CompactVocab } from '../core/text/tokenizer';
import { windowKey } from '../core/raster/types';
import type { CaptionJob, CaptionJobResult, CaptionModelIds, CaptionModelInfo, CaptionUpdate, CaptionWorkerApi, ExpertWorkerApi } from './captionWorkerApi';
import { exposeModelWorker, ModelWorkerHost } from './modelWorkerHost';
import { RasterSourceCache } from './rasterSourceCache';

/** Grids kept per image window (250 KB each): asking again about the same spot skips the tower. */
const GRID_CACHE_SIZE = 24;

class CaptionWorkerHost extends ModelWorkerHost implements CaptionWorkerApi {
  private readonly sources = new RasterSourceCache();
  private readonly grids = new Map<string, TensorData>();
  private readonly experts = new Map<number, Comlink.Remote<ExpertWorkerApi>>();
  private readonly cancelled = new Set<string>();
  private ids: CaptionModelIds | null = null;
  private config: CaptionConfig | null = null;
  private tokenizer: CaptionTokenizer | null = null;

  async configure(ids: CaptionModelIds): Promise<CaptionModelInfo> {
    const [config, tokenizerJson, tokenizerConfig, vocab] = await Promise.all([
      this.auxiliaryJson<unknown>(ids.router, 'config', 'caption.json'),
      this.auxiliaryJson<object>(ids.router, 'tokenizer', 'clip-tokenizer.json'),
      this.auxiliaryJson<object>(ids.router, 'config', 'tokenizer_config'),
      this.auxiliaryJson<CompactVocab>(ids.router, 'tokenizer', 'vocab.json'),
    ]);
    this.config = validateCaptionConfig(config);
    this.tokenizer = new CaptionTokenizer(tokenizerJson, tokenizerConfig, vocab, this.config.max_prompt_tokens);
    this.ids = ids;
    return {
      captionInstruction: this.config.caption_instruction,
      experts: this.config.experts.map((e) => ({ index: e.index, role: e.role })),
      maxPromptTokens: this.config.max_prompt_tokens,
    };
  }

  async attachExpert(expert: number, port: MessagePort): Promise<void> {
    this.experts.get(expert)?.[Comlink.releaseProxy]();
    this.experts.set(expert, Comlink.wrap<ExpertWorkerApi>(port));
  }

  private ready() {
    if (!this.config || !this.tokenizer || !this.ids) throw new Error('caption models are not configured; call configure() first');
    return { config: this.config, tokenizer: this.tokenizer, ids: this.ids };
  }

  async check(instruction: string): Promise<InstructionCheck> {
    return checkInstruction(this.ready().tokenizer, instruction);
  }

  private runner(modelId: string) {
    return async (feeds: TensorMap) => (await this.run(modelId, feeds)).outputs;
  }

  private async grid(job: CaptionJob): Promise<{ grid: TensorData; encodeMs: number }> {
    const w = job.window;
    const key = `${job.imageKey}|${windowKey(w)}`;
    const cached = this.grids.get(key);
    if (cached) return { grid: cached, encodeMs: 0 };
    const t0 = performance.now();
    const source = await this.sources.get(job.file, job.fileName);
    const grid = await gridOfWindow(await this.entryOf(this.ready().ids.imageEncoder), source, w, this.runner(this.ready().ids.imageEncoder));
    this.grids.set(key, grid);
    if (this.grids.size > GRID_CACHE_SIZE) this.grids.delete(this.grids.keys().next().value!);
    return { grid, encodeMs: performance.now() - t0 };
  }

  private decoders(ids: CaptionModelIds): ExpertDecoder[] {
    return ids.experts.map((modelId, e) => {
      const remote = this.experts.get(e);
      if (!remote) throw new Error(`caption expert ${e} has no worker attached`);
      return {
        begin: (queryFeatures, prompt, rows) => remote.begin(modelId, queryFeatures, [...prompt], rows ?? 1),
        step: (tokens, parents) => remote.step(modelId, [...tokens], parents && [...parents]),
      };
    });
  }

  async runJob(job: CaptionJob, onUpdate?: (u: CaptionUpdate) => void): Promise<CaptionJobResult> {
    const { config, tokenizer, ids } = this.ready();
    const t0 = performance.now();
    const check = checkInstruction(tokenizer, job.instruction);
    if (check.error) throw new Error(check.error);
    const { grid, encodeMs } = await this.grid(job);
    try {
      const result = await runInstruction(config, tokenizer, { route: this.runner(ids.router), query: this.runner(ids.query), decoders: this.decoders(ids) }, grid, check, {
        task: job.task,
        sequential: job.sequential,
        beams: job.beams,
        isCancelled: () => this.cancelled.has(job.jobId),
        onRoute: (route) => onUpdate?.({ route }),
        onText: (text) => onUpdate?.({ text }),
      });
      return { ...result, encodeMs, totalMs: performance.now() - t0 };
    } finally {
      this.cancelled.delete(job.jobId);
    }
  }

  async cancel(jobId: string): Promise<void> {
    this.cancelled.add(jobId);
  }
}

exposeModelWorker(new CaptionWorkerHost());
