/**
 * models/manifest.json: what each model is, where its files are, how to feed it.
 * Validation is hand-written (no schema library in the stack) and reports every
 * problem with its JSON path, so a bad manifest fails loudly in CLI, tests and UI.
 */
import { isSha256Hex } from './sha256';
import { TENSOR_DTYPES, type TensorSpec } from './tensor';
import { DIHEDRAL_VIEWS, isDihedralView, type DihedralView } from '../raster/dihedral';

export const MANIFEST_SCHEMA_VERSION = 1;

/**
 * onnx: the graph the session loads (exactly one per model); onnx-data: its external
 * weights; tokenizer/config: read by preprocessing; reference: expected outputs for the self-test.
 */
export const FILE_ROLES = ['onnx', 'onnx-data', 'tokenizer', 'config', 'reference'] as const;
export type FileRole = (typeof FILE_ROLES)[number];

export interface ModelFile {
  /** Relative to models/, forward slashes, no "..". Served at /models/<path>. */
  path: string;
  bytes: number;
  sha256: string;
  role: FileRole;
}

export interface Preprocessing {
  /** Model input size, [width, height]. */
  inputSize?: [number, number];
  channelOrder?: 'RGB' | 'BGR';
  layout?: 'NCHW' | 'NHWC';
  /** Pixels are multiplied by `scale` first (e.g. 1/255), then (x − mean) / std per channel. */
  scale?: number;
  mean?: number[];
  std?: number[];
  resize?: 'stretch' | 'letterbox' | 'center-crop';
  notes?: string;
}

export interface SelfTest {
  /** Path of a `reference`-role file: { inputs: {name: JsonTensor}, outputs: {name: JsonTensor} }. */
  reference: string;
  /** Largest allowed |output − reference|. */
  tolerance: number;
}

export interface ModelEntry {
  /** Stable id, also the key of per-model settings and URL overrides (?backend.<id>=wasm). */
  id: string;
  /** Model family = which worker hosts it (tiny, caption, ask, detect, search). */
  family: string;
  version: string;
  title: string;
  description?: string;
  files: ModelFile[];
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  preprocessing?: Preprocessing;
  /**
   * Image embedders only: the embedding of an image is the L2-normalised mean of the model's
   * embeddings of these dihedral views of its input (test-time augmentation; default: ['id']).
   */
  testTimeViews?: DihedralView[];
  selfTest?: SelfTest;
  licence: string;
  source: string;
}

export interface ModelManifest {
  schemaVersion: number;
  models: ModelEntry[];
}

export class ManifestError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid model manifest:\n  ${problems.join('\n  ')}`);
    this.name = 'ManifestError';
  }
}

type Json = unknown;
const isObject = (v: Json): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isString = (v: Json): v is string => typeof v === 'string' && v.length > 0;
const isPositiveInt = (v: Json): v is number => Number.isInteger(v) && (v as number) > 0;

/** Checks the JSON and returns it typed; throws ManifestError listing every problem. */
export function validateManifest(json: Json): ModelManifest {
  const problems: string[] = [];
  const fail = (path: string, msg: string) => problems.push(`${path}: ${msg}`);

  if (!isObject(json)) throw new ManifestError(['$: manifest must be a JSON object']);
  if (json.schemaVersion !== MANIFEST_SCHEMA_VERSION) {
    fail('$.schemaVersion', `must be ${MANIFEST_SCHEMA_VERSION}, got ${JSON.stringify(json.schemaVersion)}`);
  }
  if (!Array.isArray(json.models)) {
    fail('$.models', 'must be an array');
    throw new ManifestError(problems);
  }

  const ids = new Set<string>();
  json.models.forEach((m: Json, i: number) => {
    const at = `$.models[${i}]`;
    if (!isObject(m)) return fail(at, 'must be an object');
    const where = isString(m.id) ? `${at} (${m.id})` : at;
    if (!isString(m.id) || !/^[a-z0-9][a-z0-9._-]*$/.test(m.id)) fail(`${where}.id`, 'must be lower-case letters, digits, . _ -');
    else if (ids.has(m.id)) fail(`${where}.id`, 'duplicate id');
    else ids.add(m.id);
    for (const key of ['family', 'version', 'title', 'licence', 'source'] as const) {
      if (!isString(m[key])) fail(`${where}.${key}`, 'must be a non-empty string');
    }
    validateFiles(m.files, `${where}.files`, fail);
    validateSpecs(m.inputs, `${where}.inputs`, fail);
    validateSpecs(m.outputs, `${where}.outputs`, fail);
    if (m.preprocessing !== undefined) validatePreprocessing(m.preprocessing, `${where}.preprocessing`, fail);
    if (m.testTimeViews !== undefined) {
      const views = m.testTimeViews;
      if (!Array.isArray(views) || views.length === 0 || !views.every(isDihedralView) || new Set(views).size !== views.length) {
        fail(`${where}.testTimeViews`, `must be a non-empty list of distinct views of ${DIHEDRAL_VIEWS.join(', ')}`);
      }
    }
    if (m.selfTest !== undefined) {
      const st = m.selfTest;
      const files = Array.isArray(m.files) ? (m.files as Json[]) : [];
      if (!isObject(st)) fail(`${where}.selfTest`, 'must be an object');
      else {
        const ref = files.find((f) => isObject(f) && f.path === st.reference && f.role === 'reference');
        if (!ref) fail(`${where}.selfTest.reference`, 'must name a file of role "reference" in files');
        if (typeof st.tolerance !== 'number' || !(st.tolerance > 0)) fail(`${where}.selfTest.tolerance`, 'must be a positive number');
      }
    }
  });

  if (problems.length) throw new ManifestError(problems);
  return json as unknown as ModelManifest;
}

function validateFiles(files: Json, at: string, fail: (p: string, m: string) => void) {
  if (!Array.isArray(files) || files.length === 0) return fail(at, 'must be a non-empty array');
  let onnxCount = 0;
  const paths = new Set<string>();
  files.forEach((f: Json, j: number) => {
    const fat = `${at}[${j}]`;
    if (!isObject(f)) return fail(fat, 'must be an object');
    if (!isString(f.path) || !isSafeRelativePath(f.path)) fail(`${fat}.path`, 'must be a relative path below models/ (no "..", no leading /)');
    else if (paths.has(f.path)) fail(`${fat}.path`, 'duplicate path');
    else paths.add(f.path);
    if (!isPositiveInt(f.bytes)) fail(`${fat}.bytes`, 'must be a positive integer');
    if (typeof f.sha256 !== 'string' || !isSha256Hex(f.sha256)) fail(`${fat}.sha256`, 'must be 64 lower-case hex digits');
    if (!FILE_ROLES.includes(f.role as FileRole)) fail(`${fat}.role`, `must be one of ${FILE_ROLES.join(', ')}`);
    if (f.role === 'onnx') onnxCount++;
  });
  if (onnxCount !== 1) fail(at, `must contain exactly one file of role "onnx", found ${onnxCount}`);
}

function validateSpecs(specs: Json, at: string, fail: (p: string, m: string) => void) {
  if (!Array.isArray(specs) || specs.length === 0) return fail(at, 'must be a non-empty array');
  specs.forEach((s: Json, j: number) => {
    const sat = `${at}[${j}]`;
    if (!isObject(s)) return fail(sat, 'must be an object');
    if (!isString(s.name)) fail(`${sat}.name`, 'must be a non-empty string');
    if (!TENSOR_DTYPES.includes(s.dtype as never)) fail(`${sat}.dtype`, `must be one of ${TENSOR_DTYPES.join(', ')}`);
    if (!Array.isArray(s.shape) || !s.shape.every((d) => isPositiveInt(d) || isString(d))) {
      fail(`${sat}.shape`, 'must be an array of positive integers or symbolic names');
    }
  });
}

function validatePreprocessing(p: Json, at: string, fail: (p: string, m: string) => void) {
  if (!isObject(p)) return fail(at, 'must be an object');
  if (p.inputSize !== undefined && !(Array.isArray(p.inputSize) && p.inputSize.length === 2 && p.inputSize.every(isPositiveInt))) {
    fail(`${at}.inputSize`, 'must be [width, height]');
  }
  if (p.channelOrder !== undefined && p.channelOrder !== 'RGB' && p.channelOrder !== 'BGR') fail(`${at}.channelOrder`, 'must be RGB or BGR');
  if (p.layout !== undefined && p.layout !== 'NCHW' && p.layout !== 'NHWC') fail(`${at}.layout`, 'must be NCHW or NHWC');
  if (p.scale !== undefined && typeof p.scale !== 'number') fail(`${at}.scale`, 'must be a number');
  for (const key of ['mean', 'std'] as const) {
    const v = p[key];
    if (v !== undefined && !(Array.isArray(v) && v.every((x) => typeof x === 'number'))) fail(`${at}.${key}`, 'must be an array of numbers');
  }
  if (Array.isArray(p.std) && p.std.some((x) => x === 0)) fail(`${at}.std`, 'must not contain 0');
  if (p.resize !== undefined && !['stretch', 'letterbox', 'center-crop'].includes(p.resize as string)) {
    fail(`${at}.resize`, 'must be stretch, letterbox or center-crop');
  }
}

function isSafeRelativePath(p: string): boolean {
  return !p.startsWith('/') && !p.includes('\\') && p.split('/').every((seg) => seg !== '' && seg !== '.' && seg !== '..');
}

export function findModel(manifest: ModelManifest, id: string): ModelEntry {
  const entry = manifest.models.find((m) => m.id === id);
  if (!entry) throw new Error(`model "${id}" is not in the manifest (known: ${manifest.models.map((m) => m.id).join(', ') || 'none'})`);
  return entry;
}

export function onnxFile(entry: ModelEntry): ModelFile {
  return entry.files.find((f) => f.role === 'onnx')!;
}

/** Files a session needs (everything except self-test references). */
export function runtimeFiles(entry: ModelEntry): ModelFile[] {
  return entry.files.filter((f) => f.role !== 'reference');
}
