/**
 * Text tokenizer of the RS Lens retrieval text tower.
 *
 * CLIP byte-level BPE (Hugging Face `tokenizer.json`, run by `@huggingface/tokenizers`)
 * followed by the compact vocabulary written by `models/retrieval/vocab.py`
 * (`models/retrieval/vocab.json`): compact id = n_special + index of the CLIP id in
 * `clip_ids`, any other CLIP id -> unk_id. A sequence is [bos] + tokens[:maxLength-2] + [eos].
 * Must stay identical to `models/rslens/clip_tokenizer.py` (parity test: tokenizer.test.ts).
 *
 * Plain TS, no DOM or file access: callers pass the parsed JSON files, so it runs in
 * Node, in the browser and in workers.
 */
import { Tokenizer } from '@huggingface/tokenizers';

export const COMPACT_VOCAB_FORMAT = 'rslens-compact-clip-vocab-v1';

export interface CompactVocab {
  format: string;
  max_length: number;
  pad_id: number;
  unk_id: number;
  bos_id: number;
  eos_id: number;
  n_special: number;
  clip_ids: number[];
}

export interface EncodedBatch {
  /** Row-major [batch, length] int64, padded with pad_id. */
  inputIds: BigInt64Array;
  /** Row-major [batch, length] int64, 1 for real tokens, 0 for padding. */
  attentionMask: BigInt64Array;
  dims: [number, number];
}

/** What of a text the model can read: words outside its vocabulary, and words past its length limit. */
export interface TextCoverage {
  /** Words (surrounding punctuation stripped) with at least one word piece outside the compact vocabulary. */
  unknownWords: string[];
  /** Words whose pieces all lie past the model's length limit, so the model never sees them. */
  ignoredWords: string[];
  /** Words read, in the vocabulary. */
  knownWordCount: number;
}

const CLIP_BOS = '<|startoftext|>';
const CLIP_EOS = '<|endoftext|>';

export class RetrievalTokenizer {
  readonly maxLength: number;
  readonly vocab: CompactVocab;
  private readonly bpe: Tokenizer;
  private readonly compact: Map<number, number>;
  private readonly clipSpecial: Set<number>;

  constructor(tokenizerJson: object, tokenizerConfig: object, vocab: CompactVocab, maxLength?: number) {
    if (vocab.format !== COMPACT_VOCAB_FORMAT) {
      throw new Error(`unexpected vocab format ${vocab.format}`);
    }
    this.vocab = vocab;
    this.maxLength = maxLength ?? vocab.max_length;
    if (this.maxLength < 2) throw new Error('maxLength must be at least 2');
    this.bpe = new Tokenizer(tokenizerJson, tokenizerConfig);
    this.compact = new Map(vocab.clip_ids.map((id, i) => [id, vocab.n_special + i]));
    this.clipSpecial = new Set(
      [CLIP_BOS, CLIP_EOS].map((t) => this.bpe.token_to_id(t)).filter((id): id is number => id !== undefined),
    );
  }

  /** CLIP BPE ids of `text`, without start/end tokens. */
  clipIds(text: string): number[] {
    const ids = this.bpe.encode(text, { add_special_tokens: false }).ids;
    // Literal "<|endoftext|>" text would be matched as an added token; treat it as text-less.
    return ids.filter((id) => !this.clipSpecial.has(id));
  }

  /** Compact ids: [bos] + tokens[:maxLength-2] + [eos]. */
  encode(text: string): number[] {
    const body = this.clipIds(text)
      .slice(0, this.maxLength - 2)
      .map((id) => this.compact.get(id) ?? this.vocab.unk_id);
    return [this.vocab.bos_id, ...body, this.vocab.eos_id];
  }

  /**
   * Word-level coverage of `text` (for telling a user what the model could not read). Words are
   * separated by Unicode White_Space (what the BPE treats as space; JS `\s` would also split at
   * U+FEFF). The pre-tokeniser never joins pieces across it, so the per-word pieces add up to
   * the pieces of the whole text (tested).
   */
  coverage(text: string): TextCoverage {
    const unknownWords: string[] = [];
    const ignoredWords: string[] = [];
    let knownWordCount = 0;
    let pieces = 0;
    const room = this.maxLength - 2;
    for (const raw of text.split(/\p{White_Space}+/u)) {
      const ids = this.clipIds(raw);
      if (ids.length === 0) continue;
      const word = raw.replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, '');
      if (!word) {
        // punctuation alone is no word to report, but it takes room
        pieces += ids.length;
        continue;
      }
      if (pieces >= room) ignoredWords.push(word);
      else if (ids.slice(0, room - pieces).some((id) => !this.compact.has(id))) unknownWords.push(word);
      else knownWordCount++;
      pieces += ids.length;
    }
    return { unknownWords, ignoredWords, knownWordCount };
  }

  /** Batch as int64 tensors padded to the longest sequence (input of text-tower.onnx). */
  encodeBatch(texts: readonly string[]): EncodedBatch {
    const seqs = texts.map((t) => this.encode(t));
    const length = Math.max(2, ...seqs.map((s) => s.length));
    const inputIds = new BigInt64Array(seqs.length * length).fill(BigInt(this.vocab.pad_id));
    const attentionMask = new BigInt64Array(seqs.length * length);
    seqs.forEach((s, row) => {
      s.forEach((id, col) => {
        inputIds[row * length + col] = BigInt(id);
        attentionMask[row * length + col] = 1n;
      });
    });
    return { inputIds, attentionMask, dims: [seqs.length, length] };
  }
}
