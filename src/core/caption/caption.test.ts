import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { CompactVocab } from '../text/tokenizer';
import { decoderShapeOf, validateCaptionConfig } from './captionConfig';
import { CaptionTokenizer } from './captionTokenizer';
import type { ExpertDecoder, StepOutput } from './expertDecoder';
import { logSoftmaxRow } from './expertDecoder';
import { fuseNext, generate, readRoute } from './generate';
import { checkInstruction, MAX_INSTRUCTION_CHARS } from './pipeline';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '../../..');
const readJson = (p: string): unknown => JSON.parse(readFileSync(resolve(repoRoot, p), 'utf8'));

const config = validateCaptionConfig(readJson('models/caption/caption.json'));
const tokenizer = new CaptionTokenizer(
  readJson('models/retrieval/clip-tokenizer.json') as object,
  readJson('models/retrieval/clip-tokenizer_config.json') as object,
  readJson('models/caption/vocab.json') as CompactVocab,
  config.max_prompt_tokens,
);

interface Fixture {
  max_prompt_tokens: number;
  encode: { text: string; ids: number[]; untruncated: number }[];
  decode: { ids: number[]; text: string }[];
}
const fixture = readJson('src/core/caption/fixtures/tokenizer_parity.json') as Fixture;

describe('CaptionTokenizer parity with models/caption/train.py (Tok)', () => {
  it('uses the same prompt limit', () => expect(tokenizer.maxPromptTokens).toBe(fixture.max_prompt_tokens));

  it.each(fixture.encode.map((c) => [c.text, c] as const))('encodes %j like Python', (_t, c) => {
    const encoded = tokenizer.encode(c.text);
    expect(encoded.ids).toEqual(c.ids);
    expect(encoded.truncated).toBe(c.untruncated > fixture.max_prompt_tokens);
  });

  it.each(fixture.decode.map((c) => [c.text, c] as const))('decodes to %j like Python', (_t, c) => {
    expect(tokenizer.decode(c.ids)).toBe(c.text);
  });
});

describe('checkInstruction', () => {
  it('refuses an empty or blank question with a message', () => {
    expect(checkInstruction(tokenizer, '   ').error).toMatch(/type a question/i);
  });
  it(`refuses more than ${MAX_INSTRUCTION_CHARS} characters, and warns when a long question is cut`, () => {
    expect(checkInstruction(tokenizer, 'a'.repeat(MAX_INSTRUCTION_CHARS + 1)).error).toMatch(/characters/);
    const long = checkInstruction(tokenizer, 'is there a river near the bridge and the road '.repeat(10));
    expect(long.error).toBeUndefined();
    expect(long.ids).toHaveLength(config.max_prompt_tokens);
    expect(long.warnings.join(' ')).toMatch(/first 24 tokens/);
  });
  it('warns when most words are unknown (another language)', () => {
    const c = checkInstruction(tokenizer, '港口里有船吗？');
    expect(c.error).toBeUndefined();
    expect(c.warnings.join(' ')).toMatch(/unknown to the model/);
    expect(checkInstruction(tokenizer, 'are there any ships?').warnings).toEqual([]);
  });
});

/** A scripted expert: returns the given logits at each call and records what it was fed. */
class ScriptedExpert implements ExpertDecoder {
  fed: number[][] = [];
  private call = 0;
  constructor(private readonly script: { logits: number[]; gate: number }[]) {}
  private out(): StepOutput {
    const s = this.script[Math.min(this.call++, this.script.length - 1)];
    return { logProbs: logSoftmaxRow(Float32Array.from(s.logits), 0, s.logits.length), gates: Float32Array.of(s.gate), ms: 0 };
  }
  async begin(_q: unknown, prompt: readonly number[]) {
    this.fed.push([...prompt]);
    return this.out();
  }
  async step(tokens: readonly number[]) {
    this.fed.push([...tokens]);
    return this.out();
  }
}

describe('RS-MoE decoding', () => {
  it('routes captions to every expert and questions to the best one', () => {
    expect(readRoute([0, 2, 1], [3, 0]).experts).toEqual([0, 1, 2]);
    expect(readRoute([0, 2, 1], [0, 3])).toMatchObject({ task: 'question', experts: [1] });
    expect(readRoute([0, 2, 1], [0, 3], 'caption').experts).toEqual([0, 1, 2]);
  });

  it('mixes the experts with softmax(gate + log prior) and picks the fused argmax', () => {
    const a: StepOutput = { logProbs: logSoftmaxRow(Float32Array.from([5, 0, 0]), 0, 3), gates: Float32Array.of(0), ms: 0 };
    const b: StepOutput = { logProbs: logSoftmaxRow(Float32Array.from([0, 6, 0]), 0, 3), gates: Float32Array.of(0), ms: 0 };
    // equal weights: b's peak is higher -> token 1
    expect(fuseNext([a, b], [Math.log(0.5), Math.log(0.5)]).id).toBe(1);
    // a strongly preferred by the gate -> token 0, weights follow the gate
    const fused = fuseNext([{ ...a, gates: Float32Array.of(3) }, b], [Math.log(0.5), Math.log(0.5)]);
    expect(fused.id).toBe(0);
    expect(fused.weights[0]).toBeCloseTo(Math.exp(3) / (Math.exp(3) + 1), 6);
  });

  it('feeds the prompt, then the chosen token to every expert, and stops at eos', async () => {
    const V = config.tokenizer.vocab_size;
    const peak = (id: number) => Array.from({ length: V }, (_, i) => (i === id ? 10 : 0));
    const eos = config.tokenizer.eos_id;
    const experts = [0, 1, 2].map(() => new ScriptedExpert([{ logits: peak(100), gate: 0 }, { logits: peak(200), gate: 0 }, { logits: peak(eos), gate: 0 }]));
    const route = readRoute([0, 0, 0], [1, 0]);
    const seen: number[] = [];
    const result = await generate(config, route, experts, { dtype: 'float32', dims: [1], data: new Float32Array(1) }, [5, 6], {
      maxNewTokens: 10,
      onToken: (t) => seen.push(t.id),
    });
    expect(result.tokens.map((t) => t.id)).toEqual([100, 200]);
    expect(seen).toEqual([100, 200]);
    expect(result.stop).toBe('eos');
    for (const e of experts) expect(e.fed).toEqual([[config.tokenizer.role_id, 5, 6, config.tokenizer.bos_id], [100], [200]]);
  });

  it('stops when cancelled and at the token limit', async () => {
    const V = config.tokenizer.vocab_size;
    const always = [{ logits: Array.from({ length: V }, (_, i) => (i === 42 ? 9 : 0)), gate: 0 }];
    const route = readRoute([0, 1, 0], [0, 1]);
    const q = { dtype: 'float32' as const, dims: [1], data: new Float32Array(1) };
    const limited = await generate(config, route, [new ScriptedExpert(always)], q, [5], { maxNewTokens: 4 });
    expect(limited).toMatchObject({ stop: 'length' });
    expect(limited.tokens).toHaveLength(4);
    let n = 0;
    const cancelled = await generate(config, route, [new ScriptedExpert(always)], q, [5], { maxNewTokens: 30, isCancelled: () => ++n >= 2 });
    expect(cancelled.stop).toBe('cancelled');
    expect(cancelled.tokens).toHaveLength(2);
  });

  it('derives the decoder geometry from caption.json', () => {
    expect(decoderShapeOf(config)).toEqual({ layers: 2, heads: 4, headDim: 32, vocabSize: 2066, maxPositions: 64 });
  });
});

/** A toy language model over ids {3 = eos, 4 = A, 5 = B}: the next-token distribution depends on the last token. */
class ToyBeamExpert implements ExpertDecoder {
  private last: number[] = [];
  parents: number[][] = [];
  static readonly table: Record<number, number[]> = {
    // after the prompt: A 0.6, B 0.4
    [-1]: [0, 0, 0, 0, 0.6, 0.4],
    // after A: eos 0.4, A 0.3, B 0.3 — greedy takes A then eos (0.24)
    4: [0, 0, 0, 0.4, 0.3, 0.3],
    // after B: eos 0.9 — beam search finds B eos (0.36)
    5: [0, 0, 0, 0.9, 0.05, 0.05],
  };
  private out(): StepOutput {
    const V = 6;
    const logProbs = new Float32Array(this.last.length * V);
    // unlisted tokens behave like the start; zero probabilities become 1e-6 (no -Infinity scores)
    this.last.forEach((t, r) => (ToyBeamExpert.table[t] ?? ToyBeamExpert.table[-1]).forEach((p, v) => (logProbs[r * V + v] = Math.log(Math.max(p, 1e-6)))));
    return { logProbs, gates: new Float32Array(this.last.length), ms: 0 };
  }
  async begin(_q: unknown, _prompt: readonly number[], rows = 1) {
    this.last = Array(rows).fill(-1);
    return this.out();
  }
  async step(tokens: readonly number[], parents?: readonly number[]) {
    this.parents.push([...(parents ?? [])]);
    this.last = [...tokens];
    return this.out();
  }
}

describe('beam search', () => {
  const q = { dtype: 'float32' as const, dims: [1], data: new Float32Array(1) };
  const route = readRoute([0, 1, 0], [0, 1]);

  it('finds the sequence greedy decoding misses, and reorders the cache rows by parent beam', async () => {
    const greedy = await generate(config, route, [new ToyBeamExpert()], q, [9], { maxNewTokens: 5 });
    expect(greedy.tokens.map((t) => t.id)).toEqual([4]);
    const expert = new ToyBeamExpert();
    const best: number[][] = [];
    const beam = await generate(config, route, [expert], q, [9], { maxNewTokens: 5, beams: 2, onBest: (t) => best.push(t.map((x) => x.id)) });
    expect(beam.tokens.map((t) => t.id)).toEqual([5]);
    expect(beam.stop).toBe('eos');
    // step 1: beams (A, B) both continue row 0; step 2 ranks "B eos" (0.36) over "A eos" (0.24): all finished
    expect(expert.parents).toEqual([[0, 0]]);
    expect(best[0]).toEqual([4]);
    expect(best.at(-1)).toEqual([5]);
  });

  it('keeps finished beams unchanged (extended only by eos at no cost)', async () => {
    const beam = await generate(config, route, [new ToyBeamExpert()], q, [9], { maxNewTokens: 8, beams: 3 });
    expect(beam.tokens.map((t) => t.id)).toEqual([5]);
    expect(beam.stepMs.length).toBeLessThanOrEqual(8);
  });
});
