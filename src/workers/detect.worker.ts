/**
 * Detection ("detect") family: sliced inference over a dropped file. Pixels are read here, in
 * the worker, one tile window at a time, so a 10000×10000 GeoTIFF never sits in memory whole;
 * each finished tile is posted back at once so boxes appear while the rest runs.
 */
import { exposeModelWorker, ModelWorkerHost } from './modelWorkerHost';
import type { DetectJobResult, DetectRequest, DetectTileUpdate, DetectWorkerApi } from './detectWorkerApi';
import { RasterSourceCache } from './rasterSourceCache';
import { parseDetectorSpec, type DetectorSpec } from '../core/detect/detectorSpec';
import { detectSliced } from '../core/detect/slicedDetect';
import type { TensorData } from '../core/models/tensor';

class DetectWorkerHost extends ModelWorkerHost implements DetectWorkerApi {
  private readonly sources = new RasterSourceCache();
  private readonly cancelled = new Set<string>();

  async detectorSpec(modelId: string): Promise<DetectorSpec> {
    return parseDetectorSpec(await this.auxiliaryJson<unknown>(modelId, 'config'));
  }

  async detect(modelId: string, file: Blob, name: string, request: DetectRequest, jobId: string, onTile?: (update: DetectTileUpdate) => void): Promise<DetectJobResult> {
    this.cancelled.delete(jobId);
    const [spec, source] = await Promise.all([this.detectorSpec(modelId), this.sources.get(file, name)]);
    const run = async (input: TensorData) => (await this.run(modelId, { [spec.inputName]: input }, [spec.outputName])).outputs[spec.outputName];
    try {
      return await detectSliced(source, spec, run, {
        region: request.region,
        scale: request.scale,
        conf: request.conf,
        maxDets: Infinity, // the app shows every object; the 1000 cap is the evaluation protocol's
        // WASM inference never yields to the event loop: let a pending cancel() message in first.
        isCancelled: async () => {
          await new Promise((resolve) => setTimeout(resolve, 0));
          return this.cancelled.has(jobId);
        },
        onTile: onTile && (({ done, total, detections, skipped }) => onTile({ done, total, detections, skipped })),
      });
    } finally {
      this.cancelled.delete(jobId);
    }
  }

  async cancel(jobId: string): Promise<void> {
    this.cancelled.add(jobId);
  }
}

exposeModelWorker(new DetectWorkerHost());
