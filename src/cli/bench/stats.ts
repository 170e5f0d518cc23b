/** What a benchmark returns: one table row of latency statistics. */
export interface BenchResult {
  benchmark: string;
  runtime: string;
  iterations: number;
  meanMs: number;
  p50Ms: number;
  p90Ms: number;
  minMs: number;
  /** Throughput, when the benchmark measures one (e.g. images/s). */
  perSecond?: number;
  unit?: string;
}

export interface Benchmark {
  name: string;
  description: string;
  /** One row, or several for benchmarks that measure a pipeline's stages in one run. */
  run(): Promise<BenchResult | BenchResult[]>;
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
