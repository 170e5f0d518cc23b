/**
 * One ORT session for one manifest model on one backend: create, warm up,
 * run (serialised), dispose. Converts between our plain TensorData and ort.Tensor.
 */
import type { ModelEntry } from '../core/models/manifest';
import { zeroTensor, type TensorData, type TensorDtype, type TensorMap } from '../core/models/tensor';
import type { Backend } from './backendPreference';
import { ortFor, type Ort } from './ort';
import { SerialQueue } from './serialQueue';
import { SESSION_CONFIG } from './sessionConfig';

type OrtTensor = InstanceType<Ort['Tensor']>;
type OrtSession = Awaited<ReturnType<Ort['InferenceSession']['create']>>;

function fromOrtTensor(t: OrtTensor): TensorData {
  // Copy: the data may be a view into wasm memory or a GPU download buffer.
  const data = (t.data as TensorData['data']).slice();
  return { dtype: t.type as TensorDtype, dims: [...t.dims], data };
}

export class ModelSession {
  private readonly queue = new SerialQueue();

  private constructor(
    readonly entry: ModelEntry,
    readonly backend: Backend,
    private readonly session: OrtSession,
    private readonly ort: Ort,
  ) {}

  static async create(entry: ModelEntry, onnxBytes: ArrayBuffer, backend: Backend): Promise<ModelSession> {
    const ort = await ortFor(backend);
    // A single-EP list: ORT must not silently fall back to another backend.
    const session = await ort.InferenceSession.create(new Uint8Array(onnxBytes), {
      executionProviders: [backend],
      graphOptimizationLevel: 'all',
      logSeverityLevel: 3,
      extra: SESSION_CONFIG,
    });
    const missing = entry.inputs.map((s) => s.name).filter((n) => !session.inputNames.includes(n));
    if (missing.length) {
      await session.release();
      throw new Error(`Model "${entry.id}": the ONNX graph has no input(s) ${missing.join(', ')} declared in the manifest (graph inputs: ${session.inputNames.join(', ')})`);
    }
    return new ModelSession(entry, backend, session, ort);
  }

  /** One run on zero inputs of the manifest's shapes (symbolic dims = 1) so first real run is not slow. */
  async warmUp(): Promise<number> {
    const feeds: TensorMap = {};
    for (const spec of this.entry.inputs) feeds[spec.name] = zeroTensor(spec);
    const t0 = performance.now();
    await this.run(feeds);
    return performance.now() - t0;
  }

  /** Runs are queued: ORT sessions must never run concurrently. */
  run(feeds: TensorMap, outputNames?: string[]): Promise<TensorMap> {
    return this.queue.run(async () => {
      const ortFeeds: Record<string, OrtTensor> = {};
      for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = new this.ort.Tensor(t.dtype, t.data, t.dims);
      const results = await this.session.run(ortFeeds, outputNames ?? this.session.outputNames);
      const out: TensorMap = {};
      for (const [name, t] of Object.entries(results)) {
        out[name] = fromOrtTensor(t);
        t.dispose();
      }
      return out;
    });
  }

  dispose(): Promise<void> {
    return this.queue.run(() => this.session.release());
  }
}
