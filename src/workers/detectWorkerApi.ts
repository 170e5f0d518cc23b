import type { ModelWorkerApi } from './modelWorkerApi';
import type { PixelWindow } from '../core/raster/types';
import type { DetectorSpec } from '../core/detect/detectorSpec';
import type { Detection } from '../core/detect/types';
import type { SlicedDetectResult } from '../core/detect/slicedDetect';

export interface DetectRequest {
  /** Full-res region (the visible extent); whole image when absent. */
  region?: PixelWindow;
  /** Full-res pixels per model pixel (modelScaleFor). */
  scale: number;
  /** Lowest score kept: the bottom of the UI's threshold slider. */
  conf: number;
}

export interface DetectTileUpdate {
  done: number;
  total: number;
  /** This tile's detections (seam-owned, NMS within the tile): provisional until the final merge. */
  detections: Detection[];
  skipped: boolean;
}

/** The sliced run's result; detections are after class-wise NMS across tile seams. */
export type DetectJobResult = SlicedDetectResult;

/** The detect worker: the generic model API plus sliced detection over a dropped file. */
export interface DetectWorkerApi extends ModelWorkerApi {
  /** The loaded detector's metadata (classes, tiling, thresholds). */
  detectorSpec(modelId: string): Promise<DetectorSpec>;
  /** Detects over the file's region; stops early (cancelled: true) after cancel(jobId). */
  detect(modelId: string, file: Blob, name: string, request: DetectRequest, jobId: string, onTile?: (update: DetectTileUpdate) => void): Promise<DetectJobResult>;
  cancel(jobId: string): Promise<void>;
}
