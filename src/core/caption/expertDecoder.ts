/**
 * One decoder expert, decoded incrementally: the first call feeds the whole prompt with empty
 * past key/values, every later call one token per row with the previous call's present_* as
 * past_*. Rows are beams (1 for greedy); a beam step may first reorder the cache rows (the
 * surviving beams' parents). The cache stays with the decoder (in the app: inside its worker),
 * so only the next-token log-probabilities and the fusion gates travel.
 */
import type { TensorData, TensorMap } from '../models/tensor';
import type { DecoderShape } from './captionConfig';

export type RunModel = (feeds: TensorMap) => Promise<TensorMap>;

export interface StepOutput {
  /** log_softmax of the next-token logits, row-major [rows × vocabSize]. */
  logProbs: Float32Array;
  /** Fusion gate logit of this expert at this position, per row. */
  gates: Float32Array;
  /** Model run time of this step. */
  ms: number;
}

/** What the generator needs from an expert, wherever it runs (worker, Node, in-process). */
export interface ExpertDecoder {
  /** Feeds the prompt to `rows` identical rows (query features given for one row). */
  begin(queryFeatures: TensorData, promptTokens: readonly number[], rows?: number): Promise<StepOutput>;
  /** Feeds one token per row; with `parents`, row i continues the cache of row parents[i]. */
  step(tokens: readonly number[], parents?: readonly number[]): Promise<StepOutput>;
}

export function logSoftmaxRow(logits: Float32Array, offset: number, length: number, out = new Float32Array(length), outOffset = 0): Float32Array {
  let max = -Infinity;
  for (let i = 0; i < length; i++) max = Math.max(max, logits[offset + i]);
  let sum = 0;
  for (let i = 0; i < length; i++) sum += Math.exp(logits[offset + i] - max);
  const lse = Math.log(sum) + max;
  for (let i = 0; i < length; i++) out[outOffset + i] = logits[offset + i] - lse;
  return out;
}

/** Rows of a [rows, …] float tensor picked (and repeated) by index. */
export function gatherRows(t: TensorData, rows: readonly number[]): TensorData {
  const per = t.dims.slice(1).reduce((a, b) => a * b, 1);
  const src = t.data as Float32Array;
  const out = new Float32Array(rows.length * per);
  rows.forEach((r, i) => out.set(src.subarray(r * per, (r + 1) * per), i * per));
  return { dtype: t.dtype, dims: [rows.length, ...t.dims.slice(1)], data: out };
}

const int64 = (rows: number, perRow: readonly number[][]): TensorData => ({
  dtype: 'int64',
  dims: [rows, perRow[0].length],
  data: BigInt64Array.from(perRow.flat().map(BigInt)),
});

export class OnnxExpertDecoder implements ExpertDecoder {
  private past: TensorMap | null = null;
  private queryFeatures: TensorData | null = null;
  private position = 0;
  private rows = 1;

  constructor(
    private readonly run: RunModel,
    private readonly shape: DecoderShape,
  ) {}

  private emptyPast(rows: number): TensorMap {
    const past: TensorMap = {};
    for (let l = 0; l < this.shape.layers; l++) {
      for (const kv of ['key', 'value']) {
        past[`past_${kv}_${l}`] = { dtype: 'float32', dims: [rows, this.shape.heads, 0, this.shape.headDim], data: new Float32Array(0) };
      }
    }
    return past;
  }

  begin(queryFeatures: TensorData, promptTokens: readonly number[], rows = 1): Promise<StepOutput> {
    if (promptTokens.length === 0) throw new Error('empty expert prompt');
    this.rows = rows;
    this.queryFeatures = rows === 1 ? queryFeatures : gatherRows(queryFeatures, Array(rows).fill(0));
    this.past = this.emptyPast(rows);
    this.position = 0;
    return this.feed(Array.from({ length: rows }, () => [...promptTokens]));
  }

  step(tokens: readonly number[], parents?: readonly number[]): Promise<StepOutput> {
    if (!this.past) throw new Error('step() before begin()');
    if (tokens.length !== this.rows) throw new Error(`expected ${this.rows} tokens, got ${tokens.length}`);
    if (parents && parents.some((p, i) => p !== i)) {
      for (const name of Object.keys(this.past)) this.past[name] = gatherRows(this.past[name], parents);
    }
    return this.feed(tokens.map((t) => [t]));
  }

  private async feed(tokens: number[][]): Promise<StepOutput> {
    const T = tokens[0].length;
    if (this.position + T > this.shape.maxPositions) {
      throw new Error(`the decoder reads at most ${this.shape.maxPositions} positions`);
    }
    const t0 = performance.now();
    const out = await this.run({ input_ids: int64(this.rows, tokens), query_features: this.queryFeatures!, ...this.past! });
    const ms = performance.now() - t0;
    const next: TensorMap = {};
    for (let l = 0; l < this.shape.layers; l++) {
      for (const kv of ['key', 'value']) next[`past_${kv}_${l}`] = out[`present_${kv}_${l}`];
    }
    this.past = next;
    this.position += T;
    const V = this.shape.vocabSize;
    const logits = out.logits.data as Float32Array;
    const gate = out.gate.data as Float32Array;
    const logProbs = new Float32Array(this.rows * V);
    const gates = new Float32Array(this.rows);
    for (let r = 0; r < this.rows; r++) {
      logSoftmaxRow(logits, (r * T + T - 1) * V, V, logProbs, r * V);
      gates[r] = gate[r * T + T - 1];
    }
    return { logProbs, gates, ms };
  }
}
