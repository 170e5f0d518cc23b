/**
 * Check the exported ONNX towers with onnxruntime-node (the same kernels as onnxruntime-web's CPU path).
 *
 *   npx tsx models/retrieval/check_onnx.ts [--no-val] [--dir FOLDER] [--suffix -fp16]
 *
 * 1. ONNX vs PyTorch: runs both towers on the inputs saved by `models.retrieval.export`
 *    (models/runs/retrieval/parity/*.npy, gitignored; RSLENS_RUNS overrides models/runs) and
 *    reports the max abs difference of every output.
 * 2. Val mR with ONNX only: decodes the RSICD val JPEGs (jpeg-js), tokenizes the captions with
 *    the app's TypeScript tokenizer, embeds with the ONNX towers (averaging the dihedral views that
 *    models/manifest.json lists in the image tower's testTimeViews, as the app does; the export's
 *    test_time_views in retrieval.json must agree) and computes R@1/5/10 both ways.
 * Writes both into models/retrieval/retrieval.json (onnx_check, val_metrics_onnx).
 * Exits 1 when an output differs by more than 1e-3.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { RetrievalTokenizer, type CompactVocab } from '../../src/core/text/tokenizer';
import { isDihedralView, type DihedralView } from '../../src/core/raster/dihedral';
import { embedTexts, meanOfViews } from '../../src/core/retrieval/embed';
import { runNodeSession } from '../../src/cli/ortNode';
import { readManifest } from '../../src/cli/manifestFiles';
import { PIXELS_PER_IMAGE, writeImageViews } from './rsicd_pixels';

const scriptDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(scriptDir, '../..');
const dirArg = process.argv.indexOf('--dir');
// folder with the exported files (default: this folder)
const here = dirArg > 0 ? resolve(process.argv[dirArg + 1]) : scriptDir;
const shared = process.env.RSLENS_SHARED ? resolve(process.env.RSLENS_SHARED) : resolve(repoRoot, '../shared');
const rsicd = process.env.RSLENS_DATA ? resolve(process.env.RSLENS_DATA) : resolve(shared, 'data/rsicd');
const readJson = (p: string): unknown => JSON.parse(readFileSync(p, 'utf8'));

interface Npy {
  shape: number[];
  data: Float32Array | BigInt64Array;
}

function readNpy(path: string): Npy {
  const buf = readFileSync(path);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.subarray(start, start + headerLen).toString('latin1');
  const descr = /'descr':\s*'([^']+)'/.exec(header)![1];
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)![1].split(',').filter((s) => s.trim()).map(Number);
  if (/'fortran_order':\s*True/.test(header)) throw new Error('fortran order npy');
  const body = buf.subarray(start + headerLen);
  const ab = body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength);
  if (descr === '<f4') return { shape, data: new Float32Array(ab) };
  if (descr === '<i8') return { shape, data: new BigInt64Array(ab) };
  throw new Error(`unsupported npy dtype ${descr}`);
}

/** The views the app averages (the manifest's); the export being checked must have been made for them. */
function testTimeViews(meta: Record<string, unknown>): DihedralView[] {
  const manifest = readManifest();
  const entry = manifest.models.find((m) => m.id === 'retrieval-image');
  if (!entry) throw new Error('models/manifest.json has no "retrieval-image" entry');
  const views = entry.testTimeViews ?? ['id'];
  const exported = (meta.test_time_views as unknown[] | undefined) ?? ['id'];
  if (!exported.every(isDihedralView) || exported.join() !== views.join()) {
    throw new Error(`retrieval.json was exported for test-time views ${JSON.stringify(exported)} but the manifest lists ${JSON.stringify(views)}: update testTimeViews in models/manifest.json`);
  }
  return views;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function recalls(sim: Float32Array, nImg: number, per: number): Record<string, number> {
  const nTxt = nImg * per;
  const rankI2t: number[] = [];
  for (let i = 0; i < nImg; i++) {
    const row = sim.subarray(i * nTxt, (i + 1) * nTxt);
    let best = Infinity;
    for (let c = i * per; c < (i + 1) * per; c++) {
      let r = 0;
      for (let j = 0; j < nTxt; j++) if (row[j] > row[c] || (row[j] === row[c] && j < c)) r++;
      best = Math.min(best, r);
    }
    rankI2t.push(best);
  }
  const rankT2i: number[] = [];
  for (let t = 0; t < nTxt; t++) {
    const own = Math.floor(t / per);
    const s = sim[own * nTxt + t];
    let r = 0;
    for (let i = 0; i < nImg; i++) {
      const v = sim[i * nTxt + t];
      if (v > s || (v === s && i < own)) r++;
    }
    rankT2i.push(r);
  }
  const out: Record<string, number> = {};
  for (const k of [1, 5, 10]) out[`i2t_R@${k}`] = (100 * rankI2t.filter((r) => r < k).length) / nImg;
  for (const k of [1, 5, 10]) out[`t2i_R@${k}`] = (100 * rankT2i.filter((r) => r < k).length) / nTxt;
  out.mR = Object.values(out).reduce((a, b) => a + b, 0) / 6;
  return out;
}

async function captionEncoderGrid(px: Npy, suffix: string, opts: ort.InferenceSession.SessionOptions): Promise<ort.Tensor> {
  const file = resolve(repoRoot, 'models/caption', `image-encoder${suffix}.onnx`);
  console.log(`image tower has no grid output: checking the grid of ${file.slice(repoRoot.length + 1)}`);
  const enc = await ort.InferenceSession.create(file, opts);
  return (await enc.run({ pixels: new ort.Tensor('float32', px.data as Float32Array, px.shape) })).grid;
}

async function main(): Promise<void> {
  const opts: ort.InferenceSession.SessionOptions = { intraOpNumThreads: Number(process.env.RSLENS_THREADS ?? 2) };
  const sfx = process.argv.indexOf('--suffix'); // e.g. --suffix -fp16 for the float16-storage variant
  const suffix = sfx > 0 ? process.argv[sfx + 1] : '';
  const img = await ort.InferenceSession.create(resolve(here, `image-tower${suffix}.onnx`), opts);
  const txt = await ort.InferenceSession.create(resolve(here, `text-tower${suffix}.onnx`), opts);
  const runs = process.env.RSLENS_RUNS ? resolve(process.env.RSLENS_RUNS) : resolve(repoRoot, 'models/runs');
  const par = (n: string) => readNpy(resolve(runs, 'retrieval', 'parity', `${n}.npy`));

  const px = par('pixels');
  const imgOut = await img.run({ pixels: new ort.Tensor('float32', px.data as Float32Array, px.shape) });
  const ids = par('input_ids');
  const mask = par('attention_mask');
  const txtOut = await txt.run({
    input_ids: new ort.Tensor('int64', ids.data as BigInt64Array, ids.shape),
    attention_mask: new ort.Tensor('int64', mask.data as BigInt64Array, mask.shape),
  });
  // The frozen grid for captioning: this tower's output (v0.2 layout) or, for a tower exported without
  // it (fine-tuned members), the caption image encoder (models.caption.export_encoder).
  const gridOut = imgOut.grid ?? (await captionEncoderGrid(px, suffix, opts));
  const check = {
    image_embedding: maxAbsDiff(imgOut.embedding.data as Float32Array, par('image_embedding').data as Float32Array),
    image_grid: maxAbsDiff(gridOut.data as Float32Array, par('image_grid').data as Float32Array),
    text_embedding: maxAbsDiff(txtOut.embedding.data as Float32Array, par('text_embedding').data as Float32Array),
  };
  console.log('ONNX vs PyTorch max abs diff:', check);

  const metaPath = resolve(here, 'retrieval.json');
  const meta = readJson(metaPath) as Record<string, unknown>;
  const checkKey = suffix ? `onnx_check${suffix.replace(/-/g, '_')}` : 'onnx_check';
  meta[checkKey] = { runtime: 'onnxruntime-node (CPU)', max_abs_diff: check };

  if (!process.argv.includes('--no-val')) {
    const vocab = readJson(resolve(scriptDir, 'vocab.json')) as CompactVocab;
    const tok = new RetrievalTokenizer(
      readJson(resolve(shared, 'tokenizers/clip/tokenizer.json')) as object,
      readJson(resolve(shared, 'tokenizers/clip/tokenizer_config.json')) as object,
      vocab,
    );
    const items = readFileSync(resolve(rsicd, 'val.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as { image: string; captions: string[] });
    const limitArg = process.argv.indexOf('--val-limit'); // debug only: first N val images
    if (limitArg > 0) items.splice(Number(process.argv[limitArg + 1]));
    const D = (imgOut.embedding.dims as number[])[1];
    const views = testTimeViews(meta);
    const imgEmb = new Float32Array(items.length * D);
    const t0 = Date.now();
    const B = Math.max(1, Math.round(16 / views.length));
    for (let s = 0; s < items.length; s += B) {
      const batch = items.slice(s, s + B);
      const pixels = new Float32Array(batch.length * views.length * PIXELS_PER_IMAGE);
      batch.forEach((it, k) => writeImageViews(resolve(rsicd, it.image), views, pixels, k * views.length * PIXELS_PER_IMAGE));
      const o = await img.run({ pixels: new ort.Tensor('float32', pixels, [batch.length * views.length, 3, 224, 224]) });
      imgEmb.set(meanOfViews(o.embedding.data as Float32Array, D, views.length), s * D);
    }
    const tImg = (Date.now() - t0) / 1000;
    const caps = items.flatMap((it) => it.captions);
    const txtEmb = (await embedTexts(tok, (feeds) => runNodeSession(txt, feeds), caps, 256)).vectors;
    const nImg = items.length;
    const nTxt = caps.length;
    const sim = new Float32Array(nImg * nTxt);
    for (let i = 0; i < nImg; i++) {
      for (let t = 0; t < nTxt; t++) {
        let d = 0;
        for (let k = 0; k < D; k++) d += imgEmb[i * D + k] * txtEmb[t * D + k];
        sim[i * nTxt + t] = d;
      }
    }
    const m = recalls(sim, nImg, 5);
    console.log(`val (ONNX, jpeg-js decode, TS tokenizer, views ${views.join(',')}): ${JSON.stringify(m)}; ${(nImg / tImg).toFixed(1)} images/s`);
    if (limitArg > 0) return;
    meta[`val_metrics_onnx${suffix.replace(/-/g, '_')}`] = { ...m, note: 'onnxruntime-node, JPEG decoded with jpeg-js, captions tokenized by src/core/text/tokenizer.ts', test_time_views: views };
  }
  writeFileSync(metaPath, JSON.stringify(meta, null, 1) + '\n');
  // float32 graphs must match PyTorch closely; the float16-storage variant within its rounding
  const tol = suffix
    ? { image_embedding: 5e-3, image_grid: 0.25, text_embedding: 5e-3 }
    : { image_embedding: 1e-4, image_grid: 1e-3, text_embedding: 1e-4 };
  const bad = (Object.keys(check) as (keyof typeof check)[]).filter((k) => check[k] > tol[k]);
  if (bad.length) {
    console.error(`ONNX differs from PyTorch beyond tolerance: ${bad.map((k) => `${k} ${check[k]}`).join(', ')}`);
    process.exit(1);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
