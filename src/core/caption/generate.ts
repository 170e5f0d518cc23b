/**
 * RS-MoE decoding as `models/caption/caption.json` prescribes, independent of where the
 * models run. The router's task head decides caption vs question; a caption runs every expert
 * in lock-step and mixes their next-token distributions with weights
 * softmax_e(gate_e + log_softmax(expert_logits)_e); a question runs the routed expert alone.
 * Greedy: the same token is fed back to every expert.
 */
import type { TensorData } from '../models/tensor';
import type { CaptionConfig } from './captionConfig';
import type { ExpertDecoder, StepOutput } from './expertDecoder';

export type Task = 'caption' | 'question';

export interface Route {
  task: Task;
  /** Router probability of each task (caption, question). */
  taskProbs: [number, number];
  /** Router probability of each expert. */
  expertProbs: number[];
  /** Experts that run, in index order. */
  experts: number[];
}

function softmax(values: readonly number[]): number[] {
  const max = Math.max(...values);
  const exps = values.map((v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

const argmax = (values: readonly number[]) => values.reduce((best, v, i) => (v > values[best] ? i : best), 0);

/** Reads the router outputs of one instruction (row 0). `task` overrides the task head. */
export function readRoute(expertLogits: ArrayLike<number>, taskLogits: ArrayLike<number>, task?: Task): Route {
  const expertProbs = softmax(Array.from(expertLogits));
  const taskProbs = softmax(Array.from(taskLogits).slice(0, 2)) as [number, number];
  const chosen: Task = task ?? (taskProbs[1] > taskProbs[0] ? 'question' : 'caption');
  return { task: chosen, taskProbs, expertProbs, experts: chosen === 'caption' ? expertProbs.map((_, i) => i) : [argmax(expertProbs)] };
}

/** Expert prompt: its role token, the instruction, then bos (the caption/answer follows). */
export function expertPrompt(config: CaptionConfig, instructionIds: readonly number[]): number[] {
  return [config.tokenizer.role_id, ...instructionIds, config.tokenizer.bos_id];
}

export interface GeneratedToken {
  id: number;
  /** Fusion weight of each running expert at this token (sums to 1). */
  weights: number[];
}

export interface GenerateOptions {
  maxNewTokens: number;
  /** Called after every token (not for eos). */
  onToken?: (token: GeneratedToken, index: number) => void;
  isCancelled?: () => boolean;
  /** Run the experts one after another instead of all at once (for the parallel-vs-sequential benchmark). */
  sequential?: boolean;
  /** Beams (1 = greedy). With beams, onToken reports the best beam so far through onBest. */
  beams?: number;
  /** Beam search: the best partial sequence after each step. */
  onBest?: (tokens: readonly GeneratedToken[]) => void;
}

export interface GenerateResult {
  tokens: GeneratedToken[];
  stop: 'eos' | 'length' | 'cancelled';
  /** Wall time of each step (all experts), ms; step 0 includes the prompt. */
  stepMs: number[];
  /** Model time per running expert per step, ms. */
  expertMs: number[][];
}

async function stepAll(decoders: readonly ExpertDecoder[], call: (d: ExpertDecoder) => Promise<StepOutput>, sequential: boolean): Promise<StepOutput[]> {
  if (!sequential) return Promise.all(decoders.map(call));
  const out: StepOutput[] = [];
  for (const d of decoders) out.push(await call(d));
  return out;
}

/** Next token from the experts' outputs (one row): argmax of the fused probability. */
export function fuseNext(outputs: readonly StepOutput[], logPrior: readonly number[]): GeneratedToken {
  if (outputs.length === 1) return { id: argmax(Array.from(outputs[0].logProbs)), weights: [1] };
  const weights = softmax(outputs.map((o, i) => o.gates[0] + logPrior[i]));
  const V = outputs[0].logProbs.length;
  let best = 0;
  let bestP = -Infinity;
  for (let v = 0; v < V; v++) {
    let p = 0;
    for (let i = 0; i < outputs.length; i++) p += weights[i] * Math.exp(outputs[i].logProbs[v]);
    if (p > bestP) {
      bestP = p;
      best = v;
    }
  }
  return { id: best, weights };
}

/**
 * Greedy decoding (beam search when options.beams > 1) with the running experts; `decoders[i]` is
 * expert `route.experts[i]`.
 */
export async function generate(
  config: CaptionConfig,
  route: Route,
  decoders: readonly ExpertDecoder[],
  queryFeatures: TensorData,
  instructionIds: readonly number[],
  options: GenerateOptions,
): Promise<GenerateResult> {
  if (decoders.length !== route.experts.length) throw new Error('one decoder per routed expert');
  if ((options.beams ?? 1) > 1) return beamSearch(config, route, decoders, queryFeatures, instructionIds, options);
  const logPrior = route.experts.map((e) => Math.log(route.expertProbs[e]));
  const prompt = expertPrompt(config, instructionIds);
  const sequential = options.sequential ?? false;
  const tokens: GeneratedToken[] = [];
  const stepMs: number[] = [];
  const expertMs: number[][] = [];
  let stop: GenerateResult['stop'] = 'length';
  let t0 = performance.now();
  let outputs = await stepAll(decoders, (d) => d.begin(queryFeatures, prompt), sequential);
  for (let i = 0; i < options.maxNewTokens; i++) {
    stepMs.push(performance.now() - t0);
    expertMs.push(outputs.map((o) => o.ms));
    const next = fuseNext(outputs, logPrior);
    if (next.id === config.tokenizer.eos_id) {
      stop = 'eos';
      break;
    }
    tokens.push(next);
    options.onToken?.(next, i);
    if (options.isCancelled?.()) {
      stop = 'cancelled';
      break;
    }
    if (i === options.maxNewTokens - 1) break;
    t0 = performance.now();
    outputs = await stepAll(decoders, (d) => d.step([next.id]), sequential);
  }
  return { tokens, stop, stepMs, expertMs };
}

/** Fused log-probabilities of every row, [rows × V], and the experts' weights per row. */
function fuseRows(outputs: readonly StepOutput[], logPrior: readonly number[], rows: number, V: number): { lp: Float32Array; weights: number[][] } {
  if (outputs.length === 1) return { lp: outputs[0].logProbs, weights: Array.from({ length: rows }, () => [1]) };
  const lp = new Float32Array(rows * V);
  const weights: number[][] = [];
  for (let r = 0; r < rows; r++) {
    const w = softmax(outputs.map((o, i) => o.gates[r] + logPrior[i]));
    weights.push(w);
    const logW = w.map(Math.log);
    for (let v = 0; v < V; v++) {
      let max = -Infinity;
      for (let i = 0; i < outputs.length; i++) max = Math.max(max, outputs[i].logProbs[r * V + v] + logW[i]);
      let sum = 0;
      for (let i = 0; i < outputs.length; i++) sum += Math.exp(outputs[i].logProbs[r * V + v] + logW[i] - max);
      lp[r * V + v] = max + Math.log(sum);
    }
  }
  return { lp, weights };
}

/**
 * Beam search as models/caption/evaluate.py `beam_caption` (alpha 0): beams ranked by the sum of
 * fused log-probabilities; a finished beam is only extended by eos at no cost; every expert's
 * cache rows follow the surviving beams.
 */
async function beamSearch(
  config: CaptionConfig,
  route: Route,
  decoders: readonly ExpertDecoder[],
  queryFeatures: TensorData,
  instructionIds: readonly number[],
  options: GenerateOptions,
): Promise<GenerateResult> {
  const B = options.beams!;
  const eos = config.tokenizer.eos_id;
  const logPrior = decoders.length === 1 ? [0] : route.experts.map((e) => Math.log(route.expertProbs[e]));
  const prompt = expertPrompt(config, instructionIds);
  const sequential = options.sequential ?? false;
  let score: number[] = Array.from({ length: B }, (_, b) => (b === 0 ? 0 : -1e9));
  let finished = Array<boolean>(B).fill(false);
  let beams: GeneratedToken[][] = Array.from({ length: B }, () => []);
  const stepMs: number[] = [];
  const expertMs: number[][] = [];
  let stop: GenerateResult['stop'] = 'length';
  let t0 = performance.now();
  let outputs = await stepAll(decoders, (d) => d.begin(queryFeatures, prompt, B), sequential);
  const V = outputs[0].logProbs.length / B;
  for (let t = 0; t < options.maxNewTokens; t++) {
    stepMs.push(performance.now() - t0);
    expertMs.push(outputs.map((o) => o.ms));
    const { lp, weights } = fuseRows(outputs, logPrior, B, V);
    // top B of score[b] + lp[b, v] over all (b, v); finished beams only extend with eos at 0
    const top: { s: number; b: number; v: number }[] = [];
    const consider = (s: number, b: number, v: number) => {
      if (top.length === B && s <= top[B - 1].s) return;
      let i = top.length;
      while (i > 0 && top[i - 1].s < s) i--;
      top.splice(i, 0, { s, b, v });
      if (top.length > B) top.pop();
    };
    for (let b = 0; b < B; b++) {
      if (finished[b]) consider(score[b], b, eos);
      else for (let v = 0; v < V; v++) consider(score[b] + lp[b * V + v], b, v);
    }
    const parents = top.map((c) => c.b);
    const tokens = top.map((c) => c.v);
    beams = top.map((c) => (finished[c.b] ? beams[c.b] : [...beams[c.b], ...(c.v === eos ? [] : [{ id: c.v, weights: weights[c.b] }])]));
    finished = top.map((c) => finished[c.b] || c.v === eos);
    score = top.map((c) => c.s);
    options.onBest?.(beams[0]);
    if (finished.every(Boolean)) {
      stop = 'eos';
      break;
    }
    if (options.isCancelled?.()) {
      stop = 'cancelled';
      break;
    }
    if (t === options.maxNewTokens - 1) break;
    t0 = performance.now();
    outputs = await stepAll(decoders, (d) => d.step(tokens, parents), sequential);
  }
  const best = score.indexOf(Math.max(...score));
  return { tokens: beams[best], stop: stop === 'length' && finished[best] ? 'eos' : stop, stepMs, expertMs };
}
