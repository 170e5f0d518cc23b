/**
 * Benchmark registry for `npm run bench`. Each capability adds its benchmarks
 * here; each returns one table row of latency statistics.
 */
import { findModel } from '../../core/models/manifest';
import { zeroTensor, type TensorMap } from '../../core/models/tensor';
import { readManifest } from '../manifestFiles';
import { createNodeSession, runNodeSession } from '../ortNode';
import { indexChromiumBenchmark, indexChromiumWithCaptionsBenchmark, indexNodeBenchmark, queryNodeBenchmark, rankBenchmark } from './retrievalBench';
import { detectChromiumBenchmark, detectNodeBenchmark } from './detectBench';
import { captionChromiumBenchmark, captionNodeBenchmark } from './captionBench';
import { latencyStats, type Benchmark } from './stats';

export type { Benchmark, BenchResult } from './stats';

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

export const benchmarks: Benchmark[] = [nodeModelLatency('tiny-cnn', 200), rankBenchmark, queryNodeBenchmark, indexNodeBenchmark, indexChromiumBenchmark, indexChromiumWithCaptionsBenchmark, detectNodeBenchmark, detectChromiumBenchmark, captionNodeBenchmark, captionChromiumBenchmark];
