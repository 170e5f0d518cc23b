/**
 * One decoder expert, decoded incrementally: the first call feeds the whole prompt with empty
 * past key/values, every later call one token with the previous call's present_* as past_*.
 * The cache stays with the decoder (in the app: inside its worker), so only the next-token
 * log-probabilities and the fusion gate travel.
 */
import type { TensorData, TensorMap } from '../models/tensor';
import type { DecoderShape } from './captionConfig';

export type RunModel = (feeds: TensorMap) => Promise<TensorMap>;

export interface StepOutput {
  /** log_softmax of the next-token logits, [vocabSize]. */
  logProbs: Float32Array;
  /** Fusion gate logit of this expert at this position. */
  gate: number;
  /** Model run time of this step. */
  ms: number;
}

/** What the generator needs from an expert, wherever it runs (worker, Node, in-process). */
export interface ExpertDecoder {
  begin(queryFeatures: TensorData, promptTokens: readonly number[]): Promise<StepOutput>;
  step(token: number): Promise<StepOutput>;
}

export function logSoftmaxRow(logits: Float32Array, offset: number, length: number): Float32Array {
  let max = -Infinity;
  for (let i = 0; i < length; i++) max = Math.max(max, logits[offset + i]);
  let sum = 0;
  for (let i = 0; i < length; i++) sum += Math.exp(logits[offset + i] - max);
  const lse = Math.log(sum) + max;
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) out[i] = logits[offset + i] - lse;
  return out;
}

const int64 = (ids: readonly number[]): TensorData => ({ dtype: 'int64', dims: [1, ids.length], data: BigInt64Array.from(ids.map(BigInt)) });

export class OnnxExpertDecoder implements ExpertDecoder {
  private past: TensorMap | null = null;
  private queryFeatures: TensorData | null = null;
  private position = 0;

  constructor(
    private readonly run: RunModel,
    private readonly shape: DecoderShape,
  ) {}

  private emptyPast(): TensorMap {
    const past: TensorMap = {};
    for (let l = 0; l < this.shape.layers; l++) {
      for (const kv of ['key', 'value']) {
        past[`past_${kv}_${l}`] = { dtype: 'float32', dims: [1, this.shape.heads, 0, this.shape.headDim], data: new Float32Array(0) };
      }
    }
    return past;
  }

  begin(queryFeatures: TensorData, promptTokens: readonly number[]): Promise<StepOutput> {
    if (promptTokens.length === 0) throw new Error('empty expert prompt');
    this.queryFeatures = queryFeatures;
    this.past = this.emptyPast();
    this.position = 0;
    return this.feed(promptTokens);
  }

  step(token: number): Promise<StepOutput> {
    if (!this.past) throw new Error('step() before begin()');
    return this.feed([token]);
  }

  private async feed(tokens: readonly number[]): Promise<StepOutput> {
    if (this.position + tokens.length > this.shape.maxPositions) {
      throw new Error(`the decoder reads at most ${this.shape.maxPositions} positions`);
    }
    const t0 = performance.now();
    const out = await this.run({ input_ids: int64(tokens), query_features: this.queryFeatures!, ...this.past! });
    const ms = performance.now() - t0;
    const next: TensorMap = {};
    for (let l = 0; l < this.shape.layers; l++) {
      for (const kv of ['key', 'value']) next[`past_${kv}_${l}`] = out[`present_${kv}_${l}`];
    }
    this.past = next;
    this.position += tokens.length;
    const T = tokens.length;
    const V = this.shape.vocabSize;
    const logits = out.logits.data as Float32Array;
    const gate = (out.gate.data as Float32Array)[T - 1];
    return { logProbs: logSoftmaxRow(logits, (T - 1) * V, V), gate, ms };
  }
}
