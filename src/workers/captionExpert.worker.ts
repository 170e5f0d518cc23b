/**
 * Caption-expert family: decoder experts decoded incrementally (core/caption/expertDecoder),
 * each keeping its key/value cache here. Several of these workers run side by side so the
 * experts of one caption decode in parallel; the caption worker reaches them over a port.
 */
import * as Comlink from 'comlink';
import { decoderShapeOf, type CaptionConfig } from '../core/caption/captionConfig';
import { OnnxExpertDecoder, type StepOutput } from '../core/caption/expertDecoder';
import type { TensorData } from '../core/models/tensor';
import type { ExpertWorkerApi } from './captionWorkerApi';
import { exposeModelWorker, ModelWorkerHost } from './modelWorkerHost';

/** The decoder geometry is fixed by the exported graphs' input shapes; caption.json lives with the router. */
function shapeFromEntry(inputs: { name: string; shape: (number | string)[] }[], vocabSize: number) {
  const past = inputs.find((i) => i.name === 'past_key_0');
  const layers = inputs.filter((i) => i.name.startsWith('past_key_')).length;
  if (!past || typeof past.shape[1] !== 'number' || typeof past.shape[3] !== 'number') throw new Error('expert model has no past_key_0 input');
  const heads = past.shape[1];
  const config = { tokenizer: { vocab_size: vocabSize }, params: { config: { layers, heads, dim: heads * past.shape[3], max_pos: 64 } } };
  return decoderShapeOf(config as unknown as CaptionConfig);
}

class ExpertWorkerHost extends ModelWorkerHost implements ExpertWorkerApi {
  private readonly decoders = new Map<string, OnnxExpertDecoder>();

  constructor() {
    // One decoding step is ~1 ms of work: threads would only spin against the other experts.
    super({ maxWasmThreads: 1 });
  }

  async connect(port: MessagePort): Promise<void> {
    Comlink.expose(this, port);
  }

  private async decoder(modelId: string): Promise<OnnxExpertDecoder> {
    let decoder = this.decoders.get(modelId);
    if (!decoder) {
      const entry = await this.entryOf(modelId);
      const logits = entry.outputs.find((o) => o.name === 'logits');
      const vocab = logits?.shape[2];
      if (typeof vocab !== 'number') throw new Error(`Model "${modelId}" declares no fixed logits vocabulary size`);
      decoder = new OnnxExpertDecoder(async (feeds) => (await this.run(modelId, feeds)).outputs, shapeFromEntry(entry.inputs, vocab));
      this.decoders.set(modelId, decoder);
    }
    return decoder;
  }

  private send(out: StepOutput): StepOutput {
    return Comlink.transfer(out, [out.logProbs.buffer as ArrayBuffer]);
  }

  async begin(modelId: string, queryFeatures: TensorData, promptTokens: number[], rows: number): Promise<StepOutput> {
    return this.send(await (await this.decoder(modelId)).begin(queryFeatures, promptTokens, rows));
  }

  async step(modelId: string, tokens: number[], parents?: number[]): Promise<StepOutput> {
    return this.send(await (await this.decoder(modelId)).step(tokens, parents));
  }

  override async dispose(modelId?: string): Promise<void> {
    if (modelId) this.decoders.delete(modelId);
    else this.decoders.clear();
    await super.dispose(modelId);
  }
}

exposeModelWorker(new ExpertWorkerHost());
