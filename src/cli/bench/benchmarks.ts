/**
 * Benchmark registry for `npm run bench`. Each capability adds its benchmarks
 * here; each returns one table row of latency statistics.
 */
import { findModel } from '../../core/models/manifest';
import { zeroTensor, type TensorMap } from '../../core/models/tensor';
import { readManifest } from '../manifestFiles';
import { createNodeSession, runNodeSession } from '../ortNode';

export interface BenchResult {
  benchmark: string;
  runtime: string;
  iterations: number;
  meanMs: number;
  p50Ms: number;
  p90Ms: number;
  minMs: number;
}

export interface Benchmark {
  name: string;
  description: string;
  run(): Promise<BenchResult>;
}

export function latencyStats(benchmark: string, runtime: string, samplesMs: number[]): BenchResult {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return {
    benchmark,
    runtime,
    iterations: sorted.length,
    meanMs: sorted.reduce((a, b) => a + b, 0) / sorted.length,
    p50Ms: at(0.5),
    p90Ms: at(0.9),
    minMs: sorted[0],
  };
}

/** Latency of one model on onnxruntime-node with zero inputs of its manifest shapes. */
function nodeModelLatency(modelId: string, iterations: number, warmup = 5): Benchmark {
  return {
    name: `${modelId}-latency`,
    description: `${modelId}: one inference on onnxruntime-node (CPU), ${iterations} runs after ${warmup} warm-up runs`,
    async run() {
      const entry = findModel(readManifest(), modelId);
      const session = await createNodeSession(entry);
      try {
        const feeds: TensorMap = Object.fromEntries(entry.inputs.map((s) => [s.name, zeroTensor(s)]));
        for (let i = 0; i < warmup; i++) await runNodeSession(session, feeds);
        const samples: number[] = [];
        for (let i = 0; i < iterations; i++) {
          const t0 = performance.now();
          await runNodeSession(session, feeds);
          samples.push(performance.now() - t0);
        }
        return latencyStats(this.name, 'onnxruntime-node cpu', samples);
      } finally {
        await session.release();
      }
    },
  };
}

export const benchmarks: Benchmark[] = [nodeModelLatency('tiny-cnn', 200)];
