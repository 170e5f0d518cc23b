/**
 * One instruction (a caption request or a question) about one image window, from pixels to
 * text: image encoder grid → router → query module → experts. Where each model runs is the
 * caller's business (`CaptionModels`): the app puts them in workers, the CLI in-process.
 */
import { imageInputOf } from '../models/normalisation';
import type { ModelEntry } from '../models/manifest';
import type { TensorData, TensorMap } from '../models/tensor';
import { readRgbaWindow, toModelTensor } from '../raster/readWindow';
import type { PixelWindow, RasterSource } from '../raster/types';
import type { CaptionConfig } from './captionConfig';
import type { CaptionTokenizer } from './captionTokenizer';
import type { ExpertDecoder, RunModel } from './expertDecoder';
import { generate, readRoute, type GeneratedToken, type Route, type Task } from './generate';

/** Longest instruction we accept; the model reads only its first max_prompt_tokens tokens anyway. */
export const MAX_INSTRUCTION_CHARS = 2000;
/** Answers are short (a word or a number). */
export const MAX_ANSWER_TOKENS = 6;

export interface CaptionModels {
  route: RunModel;
  query: RunModel;
  /** decoders[e] is expert e. */
  decoders: readonly ExpertDecoder[];
}

/** The image encoder's grid of one window: [1, C, h, w]. */
export async function gridOfWindow(imageEncoder: ModelEntry, source: RasterSource, window: PixelWindow, run: RunModel): Promise<TensorData> {
  const { width, height, norm } = imageInputOf(imageEncoder);
  const rgba = await readRgbaWindow(source, window, width, height);
  const pixels = toModelTensor(rgba, norm);
  const out = await run({ [imageEncoder.inputs[0].name]: { dtype: 'float32', dims: [1, 3, height, width], data: pixels } });
  if (!out.grid) throw new Error(`Model "${imageEncoder.id}" produced no "grid" output`);
  return out.grid;
}

export interface InstructionCheck {
  text: string;
  /** Why the instruction cannot be run (empty, too long). */
  error?: string;
  /** Things the user should know (truncated, unknown words). */
  warnings: string[];
  ids: number[];
}

/** Validates and encodes an instruction; never throws on user text. */
export function checkInstruction(tokenizer: CaptionTokenizer, raw: string): InstructionCheck {
  const text = raw.replace(/\s+/g, ' ').trim();
  if (!text) return { text, error: 'Type a question first.', warnings: [], ids: [] };
  if (text.length > MAX_INSTRUCTION_CHARS) {
    return { text, error: `That question is ${text.length} characters long; keep it under ${MAX_INSTRUCTION_CHARS}.`, warnings: [], ids: [] };
  }
  const encoded = tokenizer.encode(text);
  const warnings: string[] = [];
  if (encoded.ids.length === 0) return { text, error: 'The question has no words the model can read.', warnings, ids: [] };
  if (encoded.truncated) warnings.push(`Only the first ${tokenizer.maxPromptTokens} tokens were read; the rest of the question was ignored.`);
  if (encoded.unknown * 2 >= encoded.ids.length) {
    warnings.push('Most words are unknown to the model (it was trained on English remote-sensing captions): the answer is unreliable.');
  }
  return { text, warnings, ids: encoded.ids };
}

export interface ExpertPart {
  expert: number;
  role: string;
  /** Mean fusion weight over the generated tokens. */
  meanWeight: number;
  /** The tokens for which this expert had the largest weight ("…" marks gaps). */
  text: string;
}

export interface InstructionTimings {
  routeMs: number;
  queryMs: number;
  /** From the start of decoding to the first token. */
  firstTokenMs: number;
  decodeMs: number;
  /** Mean model time of one step, per running expert. */
  msPerExpertStep: number[];
  tokensPerSecond: number;
}

export interface InstructionResult {
  instruction: string;
  route: Route;
  text: string;
  tokens: GeneratedToken[];
  stop: 'eos' | 'length' | 'cancelled';
  /** Beams used (1 = greedy). */
  beams: number;
  parts: ExpertPart[];
  timings: InstructionTimings;
  warnings: string[];
}

export interface RunInstructionOptions {
  /** Overrides the router's task head (the caption button forces 'caption'). */
  task?: Task;
  maxNewTokens?: number;
  /** The text so far, after every step (with beams: the best beam's, which may change). */
  onText?: (textSoFar: string) => void;
  /** Beams for captions (1 = greedy); questions are always greedy. */
  beams?: number;
  /** Called once the router has decided (before decoding). */
  onRoute?: (route: Route) => void;
  isCancelled?: () => boolean;
  sequential?: boolean;
}

function expertParts(config: CaptionConfig, tokenizer: CaptionTokenizer, route: Route, tokens: readonly GeneratedToken[]): ExpertPart[] {
  return route.experts.map((expert, i) => {
    const words: string[] = [];
    let gap = false;
    for (const t of tokens) {
      const dominant = t.weights.indexOf(Math.max(...t.weights)) === i;
      if (dominant) {
        if (gap && words.length) words.push('…');
        words.push(tokenizer.decode([t.id]));
        gap = false;
      } else gap = true;
    }
    const meanWeight = tokens.length ? tokens.reduce((s, t) => s + t.weights[i], 0) / tokens.length : 0;
    return { expert, role: config.experts[expert]?.role ?? `expert ${expert}`, meanWeight, text: words.join(' ') };
  });
}

/** Runs one already-checked instruction on a grid. */
export async function runInstruction(
  config: CaptionConfig,
  tokenizer: CaptionTokenizer,
  models: CaptionModels,
  grid: TensorData,
  check: InstructionCheck,
  options: RunInstructionOptions = {},
): Promise<InstructionResult> {
  if (check.error) throw new Error(check.error);
  const ids = check.ids;
  const t0 = performance.now();
  const routed = await models.route(instructionFeeds(ids));
  const route = readRoute(routed.expert_logits.data as Float32Array, routed.task_logits.data as Float32Array, options.task);
  options.onRoute?.(route);
  const t1 = performance.now();
  const queried = await models.query({ grid, instruction_embedding: routed.instruction_embedding });
  const queryFeatures = queried.query_features;
  const t2 = performance.now();
  const maxNewTokens = options.maxNewTokens ?? (route.task === 'caption' ? config.max_new_tokens : MAX_ANSWER_TOKENS);
  const decoders = route.experts.map((e) => models.decoders[e]);
  const emitted: number[] = [];
  const beams = route.task === 'caption' ? (options.beams ?? 1) : 1;
  const result = await generate(config, route, decoders, queryFeatures, ids, {
    maxNewTokens,
    sequential: options.sequential,
    isCancelled: options.isCancelled,
    beams,
    onToken: (token) => {
      emitted.push(token.id);
      options.onText?.(tokenizer.decode(emitted));
    },
    onBest: (tokens) => options.onText?.(tokenizer.decode(tokens.map((t) => t.id))),
  });
  const decodeMs = performance.now() - t2;
  const steps = result.expertMs.length;
  const msPerExpertStep = route.experts.map((_, i) => (steps ? result.expertMs.reduce((s, row) => s + row[i], 0) / steps : 0));
  return {
    instruction: check.text,
    route,
    text: tokenizer.decode(result.tokens.map((t) => t.id)),
    tokens: result.tokens,
    stop: result.stop,
    beams,
    parts: expertParts(config, tokenizer, route, result.tokens),
    timings: {
      routeMs: t1 - t0,
      queryMs: t2 - t1,
      firstTokenMs: result.stepMs[0] ?? 0,
      decodeMs,
      msPerExpertStep,
      tokensPerSecond: result.tokens.length / Math.max(decodeMs / 1000, 1e-9),
    },
    warnings: check.warnings,
  };
}

function instructionFeeds(ids: readonly number[]): TensorMap {
  return {
    instruction_ids: { dtype: 'int64', dims: [1, ids.length], data: BigInt64Array.from(ids.map(BigInt)) },
    instruction_mask: { dtype: 'int64', dims: [1, ids.length], data: new BigInt64Array(ids.length).fill(1n) },
  };
}
