/**
 * Do two ONNX graphs of an image model compute the same thing? Runs both with onnxruntime-node on the
 * same real images (the first N of an RSICD-format jsonl, decoded as the retrieval tools do) and
 * prints the max abs difference of every output, and their mean run time. For graph rewrites that
 * must not change the maths (models.rslens.fold_pads). Exits 1 above --tol (default 1e-5).
 *
 *   npx tsx models/rslens/compare_onnx.ts A.onnx B.onnx [--jsonl ../shared/data/rsicd/val.jsonl] [--limit 64] [--tol 1e-5]
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { parseFlags } from '../../src/cli/flags';
import { PIXELS_PER_IMAGE, SIDE, writeImageViews } from '../retrieval/rsicd_pixels';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const shared = process.env.RSLENS_SHARED ? resolve(process.env.RSLENS_SHARED) : resolve(repoRoot, '../shared');

async function main(): Promise<void> {
  const files = process.argv.slice(2, 4);
  const flags = parseFlags(process.argv.slice(4), ['jsonl', 'limit', 'tol']);
  if (files.length !== 2 || !files.every((f) => f.endsWith('.onnx'))) throw new Error('usage: compare_onnx.ts A.onnx B.onnx [--jsonl PATH] [--limit N] [--tol X]');
  const jsonl = resolve(flags.jsonl ?? resolve(shared, 'data/rsicd/val.jsonl'));
  const limit = Number(flags.limit ?? 64);
  const tol = Number(flags.tol ?? 1e-5);
  const images = readFileSync(jsonl, 'utf8').split('\n').filter((l) => l.trim()).slice(0, limit)
    .map((l) => resolve(dirname(jsonl), (JSON.parse(l) as { image: string }).image));
  const opts: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1 };
  const [a, b] = await Promise.all(files.map((f) => ort.InferenceSession.create(resolve(f), opts)));
  const batch = 2;
  const worst: Record<string, number> = {};
  const ms = [0, 0];
  for (let s = 0; s < images.length; s += batch) {
    const part = images.slice(s, s + batch);
    const pixels = new Float32Array(part.length * PIXELS_PER_IMAGE);
    part.forEach((file, k) => writeImageViews(file, ['id'], pixels, k * PIXELS_PER_IMAGE));
    const feeds = { [a.inputNames[0]]: new ort.Tensor('float32', pixels, [part.length, 3, SIDE, SIDE]) };
    const outs = [];
    for (const [i, session] of [a, b].entries()) {
      const t0 = performance.now();
      outs.push(await session.run(feeds));
      ms[i] += performance.now() - t0;
    }
    for (const name of a.outputNames) {
      const x = outs[0][name].data as Float32Array;
      const y = outs[1][name].data as Float32Array;
      if (x.length !== y.length) throw new Error(`output ${name}: ${x.length} vs ${y.length} values`);
      let m = worst[name] ?? 0;
      for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
      worst[name] = m;
    }
  }
  const runs = Math.ceil(images.length / batch);
  console.log(`${images.length} images, batch ${batch}, 1 thread: ${files[0]} ${(ms[0] / runs).toFixed(1)} ms/run, ${files[1]} ${(ms[1] / runs).toFixed(1)} ms/run`);
  console.log(`max abs difference per output: ${JSON.stringify(worst)}`);
  if (Object.values(worst).some((v) => v > tol)) {
    console.error(`outputs differ by more than ${tol}`);
    process.exit(1);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
