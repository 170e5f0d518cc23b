/** The caption/VQA models on onnxruntime-node, wired into the same core pipeline the app uses. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { decoderShapeOf, validateCaptionConfig, type CaptionConfig } from '../core/caption/captionConfig';
import { CaptionTokenizer } from '../core/caption/captionTokenizer';
import { OnnxExpertDecoder, type RunModel } from '../core/caption/expertDecoder';
import { gridOfWindow, type CaptionModels } from '../core/caption/pipeline';
import { findModel, type ModelEntry } from '../core/models/manifest';
import type { TensorData } from '../core/models/tensor';
import type { CompactVocab } from '../core/text/tokenizer';
import { readImageFile } from './io/readImageFile';
import { readManifest } from './manifestFiles';
import { createNodeSession, runNodeSession } from './ortNode';
import { modelsDir } from './paths';

export const CAPTION_ROUTER = 'caption-router';
export const CAPTION_QUERY = 'caption-query';
export const CAPTION_IMAGE_ENCODER = 'caption-encoder';
export const expertModelId = (e: number) => `caption-expert${e}`;

function readFileOf(entry: ModelEntry, role: 'tokenizer' | 'config', hint: string): string {
  const file = entry.files.find((f) => f.role === role && f.path.includes(hint));
  if (!file) throw new Error(`Model "${entry.id}" lists no ${role} file matching "${hint}"`);
  return readFileSync(path.join(modelsDir, file.path), 'utf8');
}

export interface NodeCaptionModels extends CaptionModels {
  config: CaptionConfig;
  tokenizer: CaptionTokenizer;
  imageEncoder: ModelEntry;
  runImage: RunModel;
  /** Grid of a whole image file (read and resampled like the app does). */
  gridOfFile(file: string): Promise<TensorData>;
}

export async function loadCaptionModels(): Promise<NodeCaptionModels> {
  const manifest = readManifest();
  const router = findModel(manifest, CAPTION_ROUTER);
  const config = validateCaptionConfig(JSON.parse(readFileOf(router, 'config', 'caption.json')));
  const tokenizer = new CaptionTokenizer(
    JSON.parse(readFileOf(router, 'tokenizer', 'clip-tokenizer.json')),
    JSON.parse(readFileOf(router, 'config', 'tokenizer_config')),
    JSON.parse(readFileOf(router, 'tokenizer', 'vocab.json')) as CompactVocab,
    config.max_prompt_tokens,
  );
  const imageEncoder = findModel(manifest, CAPTION_IMAGE_ENCODER);
  const entries = [imageEncoder, router, findModel(manifest, CAPTION_QUERY), ...config.experts.map((e) => findModel(manifest, expertModelId(e.index)))];
  const sessions = await Promise.all(entries.map((e) => createNodeSession(e)));
  const runner = (i: number): RunModel => (feeds) => runNodeSession(sessions[i], feeds);
  const shape = decoderShapeOf(config);
  const runImage = runner(0);
  return {
    config,
    tokenizer,
    imageEncoder,
    runImage,
    route: runner(1),
    query: runner(2),
    decoders: config.experts.map((_, i) => new OnnxExpertDecoder(runner(3 + i), shape)),
    async gridOfFile(file) {
      const source = await readImageFile(file);
      return gridOfWindow(imageEncoder, source, { x: 0, y: 0, width: source.info.width, height: source.info.height }, runImage);
    },
  };
}
