/**
 * Prompt encoding and caption decoding for the caption/VQA model. Encoding is the retrieval
 * tokenizer's (CLIP BPE + compact vocabulary) without its bos/eos, cut to the prompt limit,
 * exactly as `models/caption/train.py` (`Tok.ids`) does. Decoding maps compact ids back to the
 * CLIP byte-level tokens ('</w>' ends a word) and UTF-8 decodes them, like `Tok.decode`.
 */
import { RetrievalTokenizer, type CompactVocab } from '../text/tokenizer';

/** GPT-2/CLIP byte ↔ printable-unicode table (bytes_to_unicode), as a char → byte map. */
function unicodeToByte(): Map<string, number> {
  const printable: number[] = [];
  for (let b = 33; b <= 126; b++) printable.push(b);
  for (let b = 161; b <= 172; b++) printable.push(b);
  for (let b = 174; b <= 255; b++) printable.push(b);
  const map = new Map<string, number>();
  printable.forEach((b) => map.set(String.fromCodePoint(b), b));
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    if (!printable.includes(b)) map.set(String.fromCodePoint(256 + extra++), b);
  }
  return map;
}

export interface EncodedPrompt {
  ids: number[];
  /** True when the text had more tokens than the model reads (the rest was dropped). */
  truncated: boolean;
  /** Tokens the vocabulary does not know (read as unk). */
  unknown: number;
}

export class CaptionTokenizer {
  private readonly text: RetrievalTokenizer;
  private readonly tokenBytes: (Uint8Array | null)[];
  private readonly endsWord: boolean[];
  private readonly utf8 = new TextDecoder('utf-8');

  constructor(
    tokenizerJson: object,
    tokenizerConfig: object,
    vocab: CompactVocab,
    readonly maxPromptTokens: number,
  ) {
    this.text = new RetrievalTokenizer(tokenizerJson, tokenizerConfig, vocab);
    const toByte = unicodeToByte();
    const clipVocab = (tokenizerJson as { model: { vocab: Record<string, number> } }).model.vocab;
    const clipToken = new Map<number, string>();
    for (const [token, id] of Object.entries(clipVocab)) clipToken.set(id, token);
    this.tokenBytes = [];
    this.endsWord = [];
    const n = vocab.n_special + vocab.clip_ids.length;
    for (let id = 0; id < n; id++) {
      const token = id < vocab.n_special ? undefined : clipToken.get(vocab.clip_ids[id - vocab.n_special]);
      if (token === undefined) {
        this.tokenBytes.push(null);
        this.endsWord.push(false);
        continue;
      }
      const end = token.endsWith('</w>');
      const body = end ? token.slice(0, -4) : token;
      this.tokenBytes.push(Uint8Array.from([...body].map((ch) => toByte.get(ch) ?? 63)));
      this.endsWord.push(end);
    }
  }

  get vocab(): CompactVocab {
    return this.text.vocab;
  }

  /** Instruction ids: compact CLIP BPE without bos/eos, at most maxPromptTokens. */
  encode(text: string): EncodedPrompt {
    const all = this.text.encode(text).slice(1, -1);
    const fullLength = this.text.clipIds(text).length;
    const ids = all.slice(0, this.maxPromptTokens);
    return { ids, truncated: fullLength > ids.length, unknown: ids.filter((id) => id === this.vocab.unk_id).length };
  }

  /** Text of generated ids; specials and the role id are skipped. */
  decode(ids: readonly number[]): string {
    const bytes: number[] = [];
    for (const id of ids) {
      const b = this.tokenBytes[id];
      if (!b) continue;
      for (const x of b) bytes.push(x);
      if (this.endsWord[id]) bytes.push(32);
    }
    return this.utf8.decode(Uint8Array.from(bytes)).trim();
  }
}
