/**
 * Generic implementation of ModelWorkerApi, hosted inside a worker. Family
 * workers expose it (or a subclass adding family-specific pre/post-processing).
 */
import * as Comlink from 'comlink';
import { onnxFile, runtimeFiles, type ModelEntry } from '../core/models/manifest';
import { maxAbsDiff, tensorFromJson, type JsonTensor, type TensorMap } from '../core/models/tensor';
import { chooseBackend, type GpuProbe } from '../runtime/backendPreference';
import { loadModelFile } from '../runtime/modelFiles';
import { ModelSession } from '../runtime/modelSession';
import { configureWasmThreads } from '../runtime/ort';
import type { LoadOptions, LoadResult, ModelWorkerApi, ProgressCallback, RunResult, SelfTestResult, WorkerEnvironment } from './modelWorkerApi';

interface LoadedModel {
  session: ModelSession;
  options: LoadOptions;
  result: LoadResult;
  /** Bytes of the non-ONNX runtime files (tokenizer, config), by manifest path. */
  auxiliary: Map<string, ArrayBuffer>;
}

async function probeWebGpu(): Promise<GpuProbe> {
  const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
  if (!gpu) return { available: false, fallback: false, description: 'navigator.gpu is undefined' };
  try {
    const adapter = await gpu.requestAdapter();
    if (!adapter) return { available: false, fallback: false, description: 'requestAdapter() returned null' };
    const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
    const fallback = info.isFallbackAdapter === true || info.architecture === 'swiftshader';
    const description = [info.vendor, info.architecture, info.description].filter(Boolean).join(' ') || 'unknown adapter';
    return { available: true, fallback, description };
  } catch (err) {
    return { available: false, fallback: false, description: `requestAdapter() failed: ${(err as Error).message}` };
  }
}

const transferablesOf = (outputs: TensorMap) => Object.values(outputs).map((t) => t.data.buffer as ArrayBuffer);

export class ModelWorkerHost implements ModelWorkerApi {
  private readonly loaded = new Map<string, Promise<LoadedModel>>();
  private readonly threads: number;
  private gpuProbe: Promise<GpuProbe> | null = null;
  /**
   * ORT's WebGPU EP refuses to create two sessions at once in one worker, and a warm-up run
   * during another creation can fail: creation + warm-up take turns.
   */
  private creation: Promise<unknown> = Promise.resolve();

  /** `maxWasmThreads`: see configureWasmThreads. */
  constructor(options: { maxWasmThreads?: number } = {}) {
    this.threads = configureWasmThreads(options.maxWasmThreads);
  }

  private probe(): Promise<GpuProbe> {
    this.gpuProbe ??= probeWebGpu();
    return this.gpuProbe;
  }

  async environment(): Promise<WorkerEnvironment> {
    return { crossOriginIsolated: self.crossOriginIsolated, hardwareConcurrency: navigator.hardwareConcurrency, webgpu: await this.probe() };
  }

  async load(entry: ModelEntry, options: LoadOptions, onProgress?: ProgressCallback): Promise<LoadResult> {
    const previous = this.loaded.get(entry.id);
    if (previous) {
      const model = await previous.catch(() => null);
      const same = model && model.options.backend === options.backend && model.session.entry.version === entry.version;
      if (same) return { ...model.result, fetchMs: 0, createMs: 0, loadMs: 0, warmupMs: 0 };
      await this.dispose(entry.id);
    }
    const pending = this.createModel(entry, options, onProgress);
    this.loaded.set(entry.id, pending);
    pending.catch(() => this.loaded.delete(entry.id));
    return (await pending).result;
  }

  private async createModel(entry: ModelEntry, options: LoadOptions, onProgress?: ProgressCallback): Promise<LoadedModel> {
    const t0 = performance.now();
    const fileOpts = { modelsBaseUrl: options.modelsBaseUrl, timeouts: options.timeouts, onProgress };
    const files = await Promise.all(runtimeFiles(entry).map(async (f) => ({ file: f, ...(await loadModelFile(entry.id, f, fileOpts)) })));
    const onnx = files.find((f) => f.file === onnxFile(entry))!;
    const fetchMs = performance.now() - t0;

    let { backend, reason } = chooseBackend(options.backend, await this.probe());
    let createMs = 0;
    const create = (b: typeof backend) => {
      const next = this.creation
        .catch(() => {})
        .then(async () => {
          const t = performance.now();
          const created = await ModelSession.create(entry, onnx.bytes, b);
          createMs = performance.now() - t;
          return { created, warmupMs: await created.warmUp() };
        });
      this.creation = next;
      return next;
    };
    let session: ModelSession;
    let warmupMs: number;
    try {
      ({ created: session, warmupMs } = await create(backend));
    } catch (err) {
      const message = `Model "${entry.id}": could not create a ${backend} session: ${(err as Error).message}`;
      if (options.backend !== 'auto' || backend === 'wasm') throw new Error(message, { cause: err });
      reason = `auto: WebGPU failed (${(err as Error).message}), using WASM`;
      backend = 'wasm';
      ({ created: session, warmupMs } = await create(backend));
    }

    const result: LoadResult = {
      modelId: entry.id,
      requested: options.backend,
      backend,
      reason,
      threads: backend === 'wasm' ? this.threads : 1,
      fromCache: files.every((f) => f.fromCache),
      bytes: files.reduce((n, f) => n + f.file.bytes, 0),
      fetchMs,
      createMs,
      loadMs: fetchMs + createMs,
      warmupMs,
    };
    const auxiliary = new Map(files.filter((f) => f !== onnx).map((f) => [f.file.path, f.bytes]));
    return { session, options, result, auxiliary };
  }

  private async model(modelId: string): Promise<LoadedModel> {
    const pending = this.loaded.get(modelId);
    if (!pending) throw new Error(`Model "${modelId}" is not loaded in this worker; call load() first`);
    return pending;
  }

  /** Parsed JSON of a loaded model's file of the given role (for family pre/post-processing). */
  protected async auxiliaryJson<T>(modelId: string, role: 'tokenizer' | 'config', nameHint?: string): Promise<T> {
    const model = await this.model(modelId);
    const file = model.session.entry.files.find((f) => f.role === role && (!nameHint || f.path.includes(nameHint)));
    const bytes = file && model.auxiliary.get(file.path);
    if (!file || !bytes) throw new Error(`Model "${modelId}" has no ${role} file${nameHint ? ` matching "${nameHint}"` : ''} in the manifest`);
    return JSON.parse(new TextDecoder().decode(bytes)) as T;
  }

  /** The manifest entry of a loaded model. */
  protected async entryOf(modelId: string): Promise<ModelEntry> {
    return (await this.model(modelId)).session.entry;
  }

  async run(modelId: string, feeds: TensorMap, outputNames?: string[]): Promise<RunResult> {
    const { session } = await this.model(modelId);
    const t0 = performance.now();
    const outputs = await session.run(feeds, outputNames);
    const result = { outputs, runMs: performance.now() - t0, backend: session.backend };
    return Comlink.transfer(result, transferablesOf(outputs));
  }

  async selfTest(modelId: string): Promise<SelfTestResult> {
    const { session, options } = await this.model(modelId);
    const test = session.entry.selfTest;
    if (!test) throw new Error(`Model "${modelId}" has no selfTest in the manifest`);
    const refFile = session.entry.files.find((f) => f.path === test.reference)!;
    const { bytes } = await loadModelFile(modelId, refFile, { modelsBaseUrl: options.modelsBaseUrl, timeouts: options.timeouts });
    const reference = JSON.parse(new TextDecoder().decode(bytes)) as { inputs: Record<string, JsonTensor>; outputs: Record<string, JsonTensor> };

    const feeds: TensorMap = {};
    for (const [name, t] of Object.entries(reference.inputs)) feeds[name] = tensorFromJson(t);
    const t0 = performance.now();
    const outputs = await session.run(feeds, Object.keys(reference.outputs));
    const runMs = performance.now() - t0;
    let worst = 0;
    for (const [name, expected] of Object.entries(reference.outputs)) {
      const got = outputs[name];
      if (!got) throw new Error(`Model "${modelId}": self-test output "${name}" was not produced`);
      worst = Math.max(worst, maxAbsDiff(got, tensorFromJson(expected)));
    }
    const result: SelfTestResult = { outputs, runMs, backend: session.backend, maxAbsDiff: worst, tolerance: test.tolerance, pass: worst <= test.tolerance };
    return Comlink.transfer(result, transferablesOf(outputs));
  }

  async dispose(modelId?: string): Promise<void> {
    const ids = modelId ? [modelId] : [...this.loaded.keys()];
    for (const id of ids) {
      const pending = this.loaded.get(id);
      this.loaded.delete(id);
      const model = await pending?.catch(() => null);
      await model?.session.dispose();
    }
  }
}

/** Call from a family worker's entry module. */
export function exposeModelWorker(host: ModelWorkerApi = new ModelWorkerHost()): void {
  Comlink.expose(host);
}
