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
