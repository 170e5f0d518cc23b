import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { RetrievalTokenizer, type CompactVocab } from './tokenizer';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '../../..');
const readJson = (p: string): unknown => JSON.parse(readFileSync(p, 'utf8'));

interface Fixture {
  max_length: number;
  cases: { text: string; ids: number[]; clip_ids: number[] }[];
}

const fixture = readJson(resolve(here, 'fixtures/tokenizer-parity.json')) as Fixture;
const vocab = readJson(resolve(repoRoot, 'models/retrieval/vocab.json')) as CompactVocab;
// The files the app ships (models/retrieval/clip-tokenizer*.json, written by
// models/retrieval/tokenizer_export.py); the Python fixture came from ../shared's originals.
const tokenizer = new RetrievalTokenizer(
  readJson(resolve(repoRoot, 'models/retrieval/clip-tokenizer.json')) as object,
  readJson(resolve(repoRoot, 'models/retrieval/clip-tokenizer_config.json')) as object,
  vocab,
);

describe('RetrievalTokenizer parity with the Python training tokenizer', () => {
  it('has the fixture length limits', () => {
    expect(tokenizer.maxLength).toBe(fixture.max_length);
    expect(fixture.cases.length).toBeGreaterThanOrEqual(20);
  });

  it.each(fixture.cases.map((c, i) => [i, c] as const))('case %i: same CLIP and compact ids', (_i, c) => {
    expect(tokenizer.clipIds(c.text).slice(0, fixture.max_length - 2)).toEqual(c.clip_ids);
    expect(tokenizer.encode(c.text)).toEqual(c.ids);
  });

  it('truncates a 10,000-character string to max_length', () => {
    const long = fixture.cases.find((c) => c.text.length === 10_000);
    expect(long).toBeDefined();
    expect(tokenizer.encode(long!.text)).toHaveLength(fixture.max_length);
  });

  it('pads batches with pad_id and a zero mask', () => {
    const b = tokenizer.encodeBatch(['', 'a harbor with boats']);
    const [n, len] = b.dims;
    expect(n).toBe(2);
    expect(b.inputIds[0]).toBe(BigInt(vocab.bos_id));
    expect(b.inputIds[1]).toBe(BigInt(vocab.eos_id));
    expect(b.inputIds[2]).toBe(BigInt(vocab.pad_id));
    expect(b.attentionMask[2]).toBe(0n);
    expect(Array.from(b.attentionMask.slice(len, 2 * len)).every((m) => m === 1n)).toBe(true);
  });
});

describe('RetrievalTokenizer.coverage', () => {
  it('per-word pieces add up to the pieces of the whole text (fixture sentences)', () => {
    for (const c of fixture.cases.filter((x) => x.text.length < 1000)) {
      const perWord = c.text.split(/\p{White_Space}+/u).reduce((n, w) => n + tokenizer.clipIds(w).length, 0);
      expect(perWord, c.text).toBe(tokenizer.clipIds(c.text).length);
    }
  });

  it('names the words outside the vocabulary, punctuation stripped', () => {
    const unk = vocab.unk_id;
    const cov = tokenizer.coverage('Storage tanks beside a river, qwertyuiop!');
    expect(cov.unknownWords).toEqual(['qwertyuiop']);
    expect(cov.knownWordCount).toBe(5);
    expect(cov.ignoredWords).toEqual([]);
    // the named word is exactly what encode() turns into unk
    expect(tokenizer.encode('qwertyuiop')).toContain(unk);
    expect(tokenizer.encode('storage tanks beside a river')).not.toContain(unk);
  });

  it('names the words past the length limit, which encode() drops', () => {
    const words = Array.from({ length: 40 }, (_, i) => (i % 2 ? 'river' : 'bridge'));
    const cov = tokenizer.coverage(words.join(' '));
    expect(cov.knownWordCount).toBe(tokenizer.maxLength - 2);
    expect(cov.ignoredWords).toHaveLength(40 - (tokenizer.maxLength - 2));
    expect(tokenizer.encode(words.join(' '))).toEqual(tokenizer.encode(words.slice(0, tokenizer.maxLength - 2).join(' ')));
  });

  it('an empty or punctuation-only text has no words to report', () => {
    expect(tokenizer.coverage('   ')).toEqual({ unknownWords: [], ignoredWords: [], knownWordCount: 0 });
    expect(tokenizer.coverage(' ... !? ')).toEqual({ unknownWords: [], ignoredWords: [], knownWordCount: 0 });
  });
});
