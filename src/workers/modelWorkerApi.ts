/**
 * The contract every model-family worker (tiny, caption, ask, detect, search)
 * exposes with comlink. Plain data only: it crosses postMessage.
 */
import type { ModelEntry } from '../core/models/manifest';
import type { TensorMap } from '../core/models/tensor';
import type { Backend, BackendPreference } from '../runtime/backendPreference';
import type { FetchTimeouts, FileProgress } from '../runtime/modelFiles';

export interface LoadOptions {
  backend: BackendPreference;
  /** URL of the models/ folder, ending in '/'. */
  modelsBaseUrl: string;
  timeouts?: FetchTimeouts;
}

export interface LoadResult {
  modelId: string;
  requested: BackendPreference;
  /** The execution provider the session was created with (single-EP list: no silent fallback). */
  backend: Backend;
  /** Why this backend (e.g. "auto: no WebGPU adapter"). */
  reason: string;
  /** WASM threads (1 unless cross-origin isolated). */
  threads: number;
  fromCache: boolean;
  bytes: number;
  /** Download/cache read + sha256 checks. */
  fetchMs: number;
  /** Session creation. */
  createMs: number;
  /** fetch + create. */
  loadMs: number;
  warmupMs: number;
}

export interface RunResult {
  outputs: TensorMap;
  runMs: number;
  backend: Backend;
}

export interface SelfTestResult extends RunResult {
  maxAbsDiff: number;
  tolerance: number;
  pass: boolean;
}

export interface WorkerEnvironment {
  crossOriginIsolated: boolean;
  hardwareConcurrency: number;
  webgpu: { available: boolean; fallback: boolean; description: string };
}

export type ProgressCallback = (p: FileProgress) => void;

export interface ModelWorkerApi {
  environment(): Promise<WorkerEnvironment>;
  /** Fetches (or reads from cache) and verifies the files, creates and warms up the session. */
  load(entry: ModelEntry, options: LoadOptions, onProgress?: ProgressCallback): Promise<LoadResult>;
  run(modelId: string, feeds: TensorMap, outputNames?: string[]): Promise<RunResult>;
  /** Runs the manifest's self-test reference input and compares to its reference outputs. */
  selfTest(modelId: string): Promise<SelfTestResult>;
  dispose(modelId?: string): Promise<void>;
}
