/**
 * Sliced (tiled) detection over a RasterSource, shared by the app's worker and the CLI:
 * tiles from planTiles (seams at the middle of each overlap), pixels from readRgbaWindow +
 * toModelTensor (BGR 0–255, invalid pixels = pad value), one model run per tile, decode with
 * seam ownership, then class-wise NMS over the whole region. Only one tile's pixels are held at
 * a time, so image size is bounded by the detections kept, not by the pixels.
 */
import { readRgbaWindow, toModelTensor, type TensorNormalisation } from '../raster/readWindow';
import { planTiles, type Tile } from '../raster/tiler';
import { computeStretch } from '../raster/stretch';
import type { PixelWindow, RasterSource, RgbaImage } from '../raster/types';
import type { TensorData } from '../models/tensor';
import { decodeTile } from './decode';
import { classWiseNms } from './nms';
import type { DetectorSpec } from './detectorSpec';
import type { Detection } from './types';

/** Runs the detector on one [1,3,H,W] tile tensor and returns its [1,N,5+C] output. */
export type RunDetector = (input: TensorData) => Promise<TensorData>;

export interface SlicedDetectOptions {
  /** Full-res region to cover (e.g. the visible extent); default the whole image. */
  region?: PixelWindow;
  /** Full-res pixels per model pixel (see modelScaleFor); default 1 = native. */
  scale?: number;
  /** Score threshold; default the spec's evaluation threshold. */
  conf?: number;
  /** Cap after NMS; default the spec's max_dets. */
  maxDets?: number;
  /** Checked before each tile; may be async (a worker yields there so a cancel message gets through). */
  isCancelled?: () => boolean | Promise<boolean>;
  /** After each tile: its own detections (seam-owned, NMS within the tile) for streaming display. */
  onTile?: (progress: TileProgress) => void;
}

export interface TileProgress {
  tile: Tile;
  done: number;
  total: number;
  detections: Detection[];
  /** The tile had no valid pixel (nodata) and was not run. */
  skipped: boolean;
}

export interface SlicedDetectResult {
  detections: Detection[];
  tiles: number;
  tilesRun: number;
  tilesNoData: number;
  cancelled: boolean;
  inferenceMs: number;
  totalMs: number;
}

export function detectorNormalisation(spec: DetectorSpec): TensorNormalisation {
  return { mean: [0, 0, 0], std: [1, 1, 1], scale: 1, layout: 'nchw', channelOrder: 'bgr', invalidFill: [spec.padValue, spec.padValue, spec.padValue] };
}

function hasValidPixel(rgba: RgbaImage): boolean {
  for (let o = 3; o < rgba.data.length; o += 4) if (rgba.data[o] !== 0) return true;
  return false;
}

export function planDetectionTiles(width: number, height: number, spec: DetectorSpec, scale = 1, region?: PixelWindow) {
  return planTiles(width, height, { tileSize: spec.tileSize, overlap: spec.overlap, scale, region });
}

export async function detectSliced(source: RasterSource, spec: DetectorSpec, run: RunDetector, options: SlicedDetectOptions = {}): Promise<SlicedDetectResult> {
  const t0 = performance.now();
  const { width, height } = source.info;
  const conf = options.conf ?? spec.confEval;
  const grid = planDetectionTiles(width, height, spec, options.scale ?? 1, options.region);
  const norm = detectorNormalisation(spec);
  const stretch = await computeStretch(source);
  const candidates: Detection[] = [];
  let inferenceMs = 0;
  let tilesRun = 0;
  let tilesNoData = 0;
  let cancelled = false;

  for (const [i, tile] of grid.tiles.entries()) {
    if (await options.isCancelled?.()) {
      cancelled = true;
      break;
    }
    const rgba = await readRgbaWindow(source, tile.window, tile.outWidth, tile.outHeight, { stretch });
    let detections: Detection[] = [];
    const skipped = !hasValidPixel(rgba);
    if (skipped) tilesNoData++;
    else {
      const input: TensorData = { dtype: 'float32', dims: [1, 3, tile.outHeight, tile.outWidth], data: toModelTensor(rgba, norm) };
      const t1 = performance.now();
      const output = await run(input);
      inferenceMs += performance.now() - t1;
      tilesRun++;
      const [, rows, stride] = output.dims;
      if (output.dims.length !== 3 || stride !== 5 + spec.classes.length) {
        throw new Error(`detector output has shape [${output.dims.join(', ')}]; expected [1, N, ${5 + spec.classes.length}]`);
      }
      detections = decodeTile({ data: output.data as Float32Array, rows, stride }, tile, grid, { conf, imageWidth: width, imageHeight: height });
      candidates.push(...detections);
    }
    options.onTile?.({ tile, done: i + 1, total: grid.tiles.length, detections: classWiseNms(detections, spec.nmsIou), skipped });
  }

  return {
    detections: classWiseNms(candidates, spec.nmsIou, options.maxDets ?? spec.maxDets),
    tiles: grid.tiles.length,
    tilesRun,
    tilesNoData,
    cancelled,
    inferenceMs,
    totalMs: performance.now() - t0,
  };
}
