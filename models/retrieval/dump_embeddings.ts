/**
 * Embed an RSICD-format split with the exported ONNX towers and save the raw vectors, for training
 * a new text tower against a locked image tower (models.retrieval.locked_text).
 *
 *   npx tsx models/retrieval/dump_embeddings.ts --jsonl ../shared/data/rsicd/train.jsonl \
 *     --views id,hflip,vflip,rot90,rot180,rot270,transpose,antitranspose --out models/cache/locked/train [--texts] [--dir FOLDER]
 *
 * Writes OUT.images.f32 (float32 [images, views, dim], one embedding per dihedral view, NOT averaged),
 * with --texts OUT.texts.f32 (float32 [captions, dim], the exported text tower on every caption in
 * file order), and OUT.json (image list, views, dim). Images are decoded with jpeg-js and viewed with
 * the app's dihedral code, as check_onnx.ts and the app do; the towers are FOLDER/image-tower-fp16.onnx
 * and text-tower-fp16.onnx (default: this folder, the shipped files). Threads: RSLENS_THREADS (default 2).
 */
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { RetrievalTokenizer, type CompactVocab } from '../../src/core/text/tokenizer';
import { isDihedralView, type DihedralView } from '../../src/core/raster/dihedral';
import { parseFlags } from '../../src/cli/flags';
import { runNodeSession } from '../../src/cli/ortNode';
import { embedTexts } from '../../src/core/retrieval/embed';
import { PIXELS_PER_IMAGE, SIDE, writeImageViews } from './rsicd_pixels';

const scriptDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(scriptDir, '../..');
const shared = process.env.RSLENS_SHARED ? resolve(process.env.RSLENS_SHARED) : resolve(repoRoot, '../shared');
const readJson = (p: string): unknown => JSON.parse(readFileSync(p, 'utf8'));

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const flags = parseFlags(args, ['jsonl', 'views', 'out', 'dir'], ['texts', 'tokens']);
  if (!flags.jsonl || !flags.out) throw new Error('usage: dump_embeddings.ts --jsonl PATH --out PREFIX [--views id,rot90] [--texts] [--dir FOLDER]');
  const views = (flags.views ?? 'id').split(',');
  if (!views.every(isDihedralView)) throw new Error(`unknown view in ${flags.views}`);
  const dir = flags.dir ? resolve(flags.dir) : scriptDir;
  const opts: ort.InferenceSession.SessionOptions = { intraOpNumThreads: Number(process.env.RSLENS_THREADS ?? 2) };
  const jsonl = resolve(flags.jsonl);
  const items = readFileSync(jsonl, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as { image: string; captions: string[] });
  const out = resolve(flags.out);
  mkdirSync(dirname(out), { recursive: true });

  const img = await ort.InferenceSession.create(resolve(dir, 'image-tower-fp16.onnx'), opts);
  const B = Math.max(1, Math.round(16 / views.length));
  let dim = 0;
  let vectors = new Float32Array(0);
  // --tokens: a graph with extra outputs head_tokens_K (each member's image-head input, [N,5,1280];
  // models.retrieval.locked_image tokens-graph), streamed to OUT.tokens.f32 [images, views, K, 5, 1280]
  const tokenOutputs = flags.tokens ? img.outputNames.filter((n) => n.startsWith('head_tokens_')).sort() : [];
  if (flags.tokens && !tokenOutputs.length) throw new Error('--tokens: the image graph has no head_tokens_K outputs');
  const tokensFd = flags.tokens ? openSync(`${out}.tokens.f32`, 'w') : -1;
  let tokenShape: number[] = [];
  const t0 = Date.now();
  for (let s = 0; s < items.length; s += B) {
    const batch = items.slice(s, s + B);
    const pixels = new Float32Array(batch.length * views.length * PIXELS_PER_IMAGE);
    batch.forEach((it, k) => writeImageViews(resolve(dirname(jsonl), it.image), views as DihedralView[], pixels, k * views.length * PIXELS_PER_IMAGE));
    const o = await img.run({ pixels: new ort.Tensor('float32', pixels, [batch.length * views.length, 3, SIDE, SIDE]) });
    if (!dim) {
      dim = (o.embedding.dims as number[])[1];
      vectors = new Float32Array(items.length * views.length * dim);
    }
    vectors.set(o.embedding.data as Float32Array, s * views.length * dim);
    if (tokenOutputs.length) {
      const parts = tokenOutputs.map((n) => o[n].data as Float32Array);
      const [, t, c] = o[tokenOutputs[0]].dims as number[];
      tokenShape = [tokenOutputs.length, t, c];
      const per = t * c; // one member's tokens of one image view
      const buf = new Float32Array(parts[0].length * parts.length);
      for (let row = 0; row < batch.length * views.length; row++) {
        parts.forEach((p, k) => buf.set(p.subarray(row * per, (row + 1) * per), (row * parts.length + k) * per));
      }
      writeSync(tokensFd, Buffer.from(buf.buffer));
    }
    if ((s / B) % 50 === 0) {
      const rate = (s + batch.length) / ((Date.now() - t0) / 1000);
      console.log(`${s + batch.length}/${items.length} images, ${rate.toFixed(1)} images/s (${views.length} views)`);
    }
  }
  writeFileSync(`${out}.images.f32`, Buffer.from(vectors.buffer));
  if (tokensFd >= 0) closeSync(tokensFd);

  if (flags.texts) {
    const txt = await ort.InferenceSession.create(resolve(dir, 'text-tower-fp16.onnx'), opts);
    const tok = new RetrievalTokenizer(
      readJson(resolve(shared, 'tokenizers/clip/tokenizer.json')) as object,
      readJson(resolve(shared, 'tokenizers/clip/tokenizer_config.json')) as object,
      readJson(resolve(scriptDir, 'vocab.json')) as CompactVocab,
    );
    const caps = items.flatMap((it) => it.captions);
    const texts = await embedTexts(tok, (feeds) => runNodeSession(txt, feeds), caps, 256);
    writeFileSync(`${out}.texts.f32`, Buffer.from(texts.vectors.buffer));
  }
  writeFileSync(`${out}.json`, JSON.stringify({ jsonl: flags.jsonl, images: items.map((it) => it.image), views, dim, ...(tokenShape.length ? { tokens: tokenShape } : {}), towers: dir === scriptDir ? 'shipped' : flags.dir }, null, 1) + '\n');
  console.log(`wrote ${out}.* : ${items.length} images x ${views.length} views x ${dim}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
