/**
 * The search towers ship with int8 weight storage (models/rslens/int8_storage.py), made from the
 * float16 files kept beside them: both must embed real images and captions alike, through the
 * app's own core code and session settings (onnxruntime-node).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { onnxFile, type ModelEntry } from '../core/models/manifest';
import { embedTexts, embedWindows, type RunModel } from '../core/retrieval/embed';
import { loadRetrieval } from './commands/evalRetrieval';
import { readImageFile } from './io/readImageFile';
import { readManifest } from './manifestFiles';
import { createNodeSession, runNodeSession } from './ortNode';
import { modelsDir, sharedDir } from './paths';
import { SESSION_CONFIG } from '../runtime/sessionConfig';

const val = readFileSync(path.join(sharedDir, 'data/rsicd/val.jsonl'), 'utf8')
  .split('\n')
  .filter(Boolean)
  .slice(0, 6)
  .map((l) => JSON.parse(l) as { image: string; captions: string[] });

/** The same entry reading another ONNX file. */
function withOnnx(entry: ModelEntry, file: string): ModelEntry {
  return { ...entry, files: entry.files.map((f) => (f === onnxFile(entry) ? { ...f, path: file } : f)) };
}

async function runner(entry: ModelEntry): Promise<RunModel> {
  const session = await createNodeSession(entry);
  return (feeds) => runNodeSession(session, feeds);
}

function cosines(a: Float32Array, b: Float32Array, dim: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < a.length / dim; r++) {
    let dot = 0;
    for (let d = 0; d < dim; d++) dot += a[r * dim + d] * b[r * dim + d];
    out.push(dot);
  }
  return out;
}

describe('int8 weight storage of the search towers', () => {
  // The towers as `eval retrieval` loads them from the manifest (the 8-bit files), loaded once.
  let loaded: ReturnType<typeof loadRetrieval> | undefined;
  const towers = () => (loaded ??= loadRetrieval());

  it('is what the manifest ships', async () => {
    const { imageEntry, textEntry } = await towers();
    expect(onnxFile(imageEntry).path).toBe('retrieval/image-tower-int8.onnx');
    expect(onnxFile(textEntry).path).toBe('retrieval/text-tower-int8.onnx');
  });

  it('embeds real val images like the float16 image tower', async () => {
    const { imageEntry: image, runImage: int8 } = await towers();
    const fp16 = await runner(withOnnx(image, 'retrieval/image-tower-fp16.onnx'));
    const sims: number[] = [];
    for (const item of val) {
      const source = await readImageFile(path.join(sharedDir, 'data/rsicd', item.image));
      const window = [{ x: 0, y: 0, width: source.info.width, height: source.info.height }];
      const [a, b] = await Promise.all([embedWindows(image, source, window, int8), embedWindows(image, source, window, fp16)]);
      sims.push(...cosines(a.vectors, b.vectors, a.dim));
    }
    console.log(`image tower int8 vs float16 cosine: min ${Math.min(...sims).toFixed(5)} over ${sims.length} val images`);
    for (const s of sims) expect(s).toBeGreaterThan(0.995);
  });

  it('embeds real val captions like the float16 text tower', async () => {
    const { textEntry: text, tokenizer, runText: int8 } = await towers();
    const fp16 = await runner(withOnnx(text, 'retrieval/text-tower-fp16.onnx'));
    const captions = val.flatMap((v) => v.captions.slice(0, 2));
    const [a, b] = await Promise.all([embedTexts(tokenizer, int8, captions), embedTexts(tokenizer, fp16, captions)]);
    const sims = cosines(a.vectors, b.vectors, a.dim);
    console.log(`text tower int8 vs float16 cosine: min ${Math.min(...sims).toFixed(5)} over ${sims.length} val captions`);
    for (const s of sims) expect(s).toBeGreaterThan(0.995);
  });
});

describe('8-bit weight files at load', () => {
  const files = readManifest()
    .models.map((m) => onnxFile(m).path)
    .filter((f) => f.includes('-int8.'));

  /** The graph ORT runs after its optimisations, serialised: does it still dequantise on every run? */
  async function optimisedKeepsDequantize(file: string, extra?: typeof SESSION_CONFIG): Promise<boolean> {
    const dir = mkdtempSync(path.join(tmpdir(), 'rslens-opt-'));
    try {
      const out = path.join(dir, 'optimised.onnx');
      await ort.InferenceSession.create(path.join(modelsDir, file), { executionProviders: ['cpu'], graphOptimizationLevel: 'all', logSeverityLevel: 3, optimizedModelFilePath: out, ...(extra && { extra }) });
      return readFileSync(out).includes('DequantizeLinear');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('the manifest ships some', () => expect(files.length).toBeGreaterThanOrEqual(2));

  it('with the app\'s session settings, ORT folds every DequantizeLinear into float32 weights once', async () => {
    for (const file of files) expect(await optimisedKeepsDequantize(file, SESSION_CONFIG), file).toBe(false);
  });

  it('without them, ORT would keep dequantising on every run (why the setting exists)', async () => {
    expect(await optimisedKeepsDequantize(files[0])).toBe(true);
  });
});
