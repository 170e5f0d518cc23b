/**
 * Where an ONNX model spends its time in onnxruntime-node (the CPU kernels that onnxruntime-web's
 * WASM path mirrors): runs it with ORT's profiler and sums the kernel time per op type.
 *
 *   npx tsx models/retrieval/profile_onnx.ts MODEL.onnx [MODEL2.onnx ...] [--batch 2] [--runs 20]
 *
 * Input: `pixels` float32 [batch,3,224,224] of uniform noise (timing only). One thread (steadier per-op
 * shares than a thread pool), after 3 warm-up runs. Prints a table per model and the mean run time.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';

interface ProfileEvent {
  cat: string;
  name: string;
  dur: number;
  args?: { op_name?: string };
}

const argValue = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const batch = argValue('--batch', 2);
const runs = argValue('--runs', 20);
const models = process.argv.slice(2).filter((a, i, all) => a.endsWith('.onnx') && !all[i - 1]?.startsWith('--'));

async function profile(path: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'rslens-profile-'));
  const session = await ort.InferenceSession.create(path, {
    intraOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    enableProfiling: true,
    profileFilePrefix: join(dir, 'ort'),
  });
  const input = session.inputNames[0];
  const data = Float32Array.from({ length: batch * 3 * 224 * 224 }, () => Math.random());
  const feeds = { [input]: new ort.Tensor('float32', data, [batch, 3, 224, 224]) };
  for (let i = 0; i < 3; i++) await session.run(feeds);
  const t0 = performance.now();
  for (let i = 0; i < runs; i++) await session.run(feeds);
  const perRun = (performance.now() - t0) / runs;
  session.endProfiling(); // ORT names the file itself (prefix + date): the folder holds only it
  const events = JSON.parse(readFileSync(join(dir, readdirSync(dir)[0]), 'utf8')) as ProfileEvent[];
  rmSync(dir, { recursive: true, force: true });
  const byOp = new Map<string, number>();
  let total = 0;
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
    const op = e.args?.op_name ?? '?';
    byOp.set(op, (byOp.get(op) ?? 0) + e.dur);
    total += e.dur;
  }
  // the profile also holds the warm-up runs: report shares, and the timed mean separately
  console.log(`\n${path}: ${perRun.toFixed(1)} ms per run of batch ${batch} (1 thread, mean of ${runs})`);
  console.log('| op type | share of kernel time |\n|---|---|');
  for (const [op, us] of [...byOp].sort((a, b) => b[1] - a[1]).slice(0, 15)) {
    console.log(`| ${op} | ${((100 * us) / total).toFixed(1)} % |`);
  }
  await session.release();
}

for (const m of models) await profile(m);
