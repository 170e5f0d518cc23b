/**
 * The one place that imports onnxruntime-web, one flavour per backend, loaded on first use:
 * - WASM: `onnxruntime-web/wasm` (ort-wasm-simd-threaded.wasm, ~14 MB), the plain build.
 * - WebGPU: `onnxruntime-web/webgpu` (ort-wasm-simd-threaded.asyncify.wasm, ~27 MB), which also
 *   carries a WASM EP for the ops WebGPU lacks.
 * Why two: the asyncify instrumentation that WebGPU needs slows the WASM EP's kernels about 5×
 * (retrieval image tower, batch 4, one thread: ~460 ms plain vs ~2,260 ms asyncify), so a WASM
 * session must not run on the WebGPU flavour. A page only downloads the flavour it uses.
 * wasmPaths stays unset: Vite serves and bundles ORT's .wasm/.mjs from our origin.
 */
import type * as OrtModule from 'onnxruntime-web';
import type { Backend } from './backendPreference';

export type Ort = typeof OrtModule;

const flavours = new Map<Backend, Promise<Ort>>();
let wasmThreads = 1;

function configure(ort: Ort): Ort {
  ort.env.logLevel = 'error';
  ort.env.wasm.numThreads = wasmThreads;
  // We already run inside a worker: no extra proxy worker.
  ort.env.wasm.proxy = false;
  return ort;
}

/** The onnxruntime-web build that runs `backend` (imported once per worker). */
export function ortFor(backend: Backend): Promise<Ort> {
  let pending = flavours.get(backend);
  if (!pending) {
    const load = backend === 'webgpu' ? import('onnxruntime-web/webgpu') : import('onnxruntime-web/wasm');
    pending = load.then((m) => configure(m as unknown as Ort));
    pending.catch(() => flavours.delete(backend));
    flavours.set(backend, pending);
  }
  return pending;
}

/**
 * Threads for the WASM EP: needs SharedArrayBuffer, i.e. a cross-origin-isolated page/worker.
 * `maxThreads` caps it for workers whose models are too small to gain from threads (their
 * spinning threads would only compete with the other workers). Call before the first session.
 */
export function configureWasmThreads(maxThreads = 4): number {
  const isolated = typeof crossOriginIsolated !== 'undefined' && crossOriginIsolated;
  const cores = typeof navigator !== 'undefined' ? navigator.hardwareConcurrency || 1 : 1;
  wasmThreads = isolated ? Math.max(1, Math.min(maxThreads, cores)) : 1;
  return wasmThreads;
}
