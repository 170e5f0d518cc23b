/**
 * What the app needs to know about the detector, read from its metadata JSON (written by
 * models/detection/export.py next to the ONNX file; MODEL_CARD.md restates it as a spec).
 */

/** Ground resolution the detector expects, in metres per pixel. */
export interface GroundResolution {
  /** Target for resampling. */
  metres: number;
  /** Pixel sizes inside this band are used at native resolution (the training scale jitter covers them). */
  band: [number, number];
  /** 'metadata': declared by the model; 'assumed': our documented default (see ASSUMED_GROUND_RESOLUTION). */
  origin: 'metadata' | 'assumed';
}

export interface DetectorSpec {
  classes: string[];
  inputName: string;
  outputName: string;
  /** Tile side and overlap in model pixels. */
  tileSize: number;
  overlap: number;
  /** Byte value given to tile pixels outside the image (and nodata). */
  padValue: number;
  confEval: number;
  confDisplay: number;
  nmsIou: number;
  maxDets: number;
  /** Model class → dataset classes merged into it, e.g. large_vehicle ← ["aerial-cars bus", …]. */
  classMerge: Record<string, string[]>;
  groundResolution: GroundResolution;
}

/**
 * The training data (KIT AIS MOS/MunichStreet frames, 12.5–18 cm; DJI drone frames of similar
 * car sizes; DOTA aerial) sits around 0.1–0.2 m/px, and training jittered scale ×0.5–1.5. The
 * metadata does not declare a ground resolution, so we assume 0.15 m/px with that band.
 */
export const ASSUMED_GROUND_RESOLUTION: GroundResolution = { metres: 0.15, band: [0.1, 0.2], origin: 'assumed' };

/** Resampling limits: at most 2× upsampling (more only blows up the tile count), 8× downsampling. */
export const MIN_MODEL_SCALE = 0.5;
export const MAX_MODEL_SCALE = 8;

type Json = Record<string, unknown>;

function field<T>(object: unknown, path: string, check: (v: unknown) => v is T): T {
  let value: unknown = object;
  for (const key of path.split('.')) value = value && typeof value === 'object' ? (value as Json)[key] : undefined;
  if (!check(value)) throw new Error(`detector metadata: "${path}" is missing or malformed (${JSON.stringify(value)})`);
  return value;
}

const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isString = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.length > 0 && v.every(isString);
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function groundResolutionOf(meta: Json): GroundResolution {
  const declared = meta.ground_resolution_m;
  if (isNumber(declared) && declared > 0) return { metres: declared, band: [declared / 1.5, declared * 1.5], origin: 'metadata' };
  if (Array.isArray(declared) && declared.length === 2 && declared.every(isNumber)) {
    const [lo, hi] = declared as [number, number];
    return { metres: Math.sqrt(lo * hi), band: [lo, hi], origin: 'metadata' };
  }
  return ASSUMED_GROUND_RESOLUTION;
}

/** Parses the detector's metadata JSON; throws naming the first missing field. */
export function parseDetectorSpec(meta: unknown): DetectorSpec {
  if (!isObject(meta)) throw new Error('detector metadata must be a JSON object');
  const classMerge = isObject(meta.class_merge) ? (meta.class_merge as Record<string, string[]>) : {};
  return {
    classes: field(meta, 'classes', isStringArray),
    inputName: field(meta, 'input.name', isString),
    outputName: field(meta, 'output.name', isString),
    tileSize: field(meta, 'slicing.tile', isNumber),
    overlap: field(meta, 'slicing.overlap', isNumber),
    padValue: field(meta, 'input.pad_value', isNumber),
    confEval: field(meta, 'thresholds.conf_eval', isNumber),
    confDisplay: field(meta, 'thresholds.conf_display', isNumber),
    nmsIou: field(meta, 'thresholds.nms_iou', isNumber),
    maxDets: field(meta, 'thresholds.max_dets', isNumber),
    classMerge,
    groundResolution: groundResolutionOf(meta),
  };
}

export interface ModelScale {
  /** Full-res image pixels per model pixel (planTiles' `scale`): < 1 upsamples, > 1 downsamples. */
  scale: number;
  note: string;
}

/** How to resample an image of the given pixel size toward the detector's ground resolution. */
export function modelScaleFor(pixelSizeMetres: number | null, ground: GroundResolution): ModelScale {
  const how = ground.origin === 'assumed' ? 'assumed' : 'declared';
  if (pixelSizeMetres === null || !(pixelSizeMetres > 0)) return { scale: 1, note: 'native resolution (the image declares no pixel size)' };
  const [lo, hi] = ground.band;
  if (pixelSizeMetres >= lo && pixelSizeMetres <= hi) {
    return { scale: 1, note: `native resolution: ${pixelSizeMetres.toPrecision(3)} m/px is within the model's ${how} ${lo}–${hi} m/px` };
  }
  const wanted = ground.metres / pixelSizeMetres;
  const scale = Math.min(MAX_MODEL_SCALE, Math.max(MIN_MODEL_SCALE, wanted));
  const limited = scale !== wanted ? ` (limited to ×${(1 / scale).toPrecision(2)})` : '';
  return {
    scale,
    note: `resampled ×${(1 / scale).toPrecision(3)}${limited}: ${pixelSizeMetres.toPrecision(3)} m/px toward the model's ${how} ${ground.metres} m/px`,
  };
}
