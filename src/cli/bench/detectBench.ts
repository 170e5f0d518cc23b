/**
 * Benchmarks of the detect capability: sliced detection of one 4000×2250 DJI frame (104 tiles of
 * 416 px), end to end (decode of tiles' windows, tensors, inference, decode, NMS), in Node
 * (onnxruntime-node) and in the app in Chromium (WASM backend); throughput in megapixels/s.
 */
import path from 'node:path';
import { detectSliced } from '../../core/detect/slicedDetect';
import { loadNodeDetector } from '../commands/evalDetect';
import { readImageFile } from '../io/readImageFile';
import { sharedDir } from '../paths';
import { latencyStats, type Benchmark, type BenchResult } from './stats';
import { withBrowserApp } from './browserApp';

const FRAME = path.join(sharedDir, 'data/aerial-cars/images/DJI_0010.jpg');

function withThroughput(result: BenchResult, megapixels: number): BenchResult {
  return { ...result, perSecond: (megapixels * 1000) / result.meanMs, unit: 'MP/s' };
}

export const detectNodeBenchmark: Benchmark = {
  name: 'detect-frame-node',
  description: 'detect: sliced detection of a 4000×2250 DJI frame (104 tiles) on onnxruntime-node (CPU), after one warm-up tile',
  async run() {
    const detector = await loadNodeDetector();
    const source = await readImageFile(FRAME);
    const { width, height } = source.info;
    await detectSliced(source, detector.spec, detector.run, { region: { x: 0, y: 0, width: 416, height: 416 } }); // warm-up
    const t0 = performance.now();
    await detectSliced(source, detector.spec, detector.run, { conf: detector.spec.confDisplay });
    const result = latencyStats(this.name, 'onnxruntime-node cpu', [performance.now() - t0]);
    return withThroughput(result, (width * height) / 1e6);
  },
};

export const detectChromiumBenchmark: Benchmark = {
  name: 'detect-frame-chromium',
  description: 'detect: the same frame in the app (Chromium, WASM backend), Detect → done, model load excluded',
  async run() {
    return withBrowserApp('/?backend=wasm', async (app) => {
      await app.dropFiles([FRAME]);
      await app.page.getByRole('tab', { name: 'detect' }).click();
      const status = app.page.getByTestId('detect-status');
      const detect = async () => {
        await app.page.getByRole('button', { name: 'Detect', exact: true }).click();
        await status.and(app.page.locator('[data-status="done"]')).waitFor({ state: 'detached' }); // the previous run's "done"
        await status.and(app.page.locator('[data-status="done"]')).waitFor({ timeout: 600_000 });
      };
      await detect(); // first run loads the model
      const start = performance.now();
      await detect();
      const totalMs = performance.now() - start;
      return withThroughput(latencyStats(this.name, 'chromium wasm', [totalMs]), (4000 * 2250) / 1e6);
    });
  },
};
