/**
 * The caption/VQA model's metadata (`models/caption/caption.json`): special ids, prompt
 * recipe, decoder shape and the question-type → expert map. Only the fields the app and
 * the CLI use are typed; validation names the missing field instead of failing later.
 */

export interface CaptionExpertInfo {
  index: number;
  file: string;
  role: string;
}

export interface CaptionConfig {
  name: string;
  tokenizer: { vocab_size: number; pad_id: number; unk_id: number; bos_id: number; eos_id: number; role_id: number };
  max_prompt_tokens: number;
  max_new_tokens: number;
  caption_instruction: string;
  experts: CaptionExpertInfo[];
  question_types_to_expert: Record<string, number>;
  params: { config: { dim: number; layers: number; heads: number; n_queries: number; max_pos: number } };
}

/** Decoder geometry derived from the config (past key/value tensors are [N, heads, P, headDim]). */
export interface DecoderShape {
  layers: number;
  heads: number;
  headDim: number;
  vocabSize: number;
  maxPositions: number;
}

export function decoderShapeOf(config: CaptionConfig): DecoderShape {
  const c = config.params.config;
  return { layers: c.layers, heads: c.heads, headDim: c.dim / c.heads, vocabSize: config.tokenizer.vocab_size, maxPositions: c.max_pos };
}

export function validateCaptionConfig(json: unknown): CaptionConfig {
  const c = json as CaptionConfig;
  const need = (ok: unknown, what: string) => {
    if (!ok) throw new Error(`caption.json: missing or invalid ${what}`);
  };
  need(c && typeof c === 'object', 'object');
  need(c.tokenizer && Number.isInteger(c.tokenizer.eos_id) && Number.isInteger(c.tokenizer.role_id), 'tokenizer ids');
  need(Number.isInteger(c.max_prompt_tokens) && Number.isInteger(c.max_new_tokens), 'max_prompt_tokens/max_new_tokens');
  need(typeof c.caption_instruction === 'string', 'caption_instruction');
  need(Array.isArray(c.experts) && c.experts.length > 0, 'experts');
  need(c.params?.config && c.params.config.dim % c.params.config.heads === 0, 'params.config');
  return c;
}
