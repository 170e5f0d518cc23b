/**
 * The one place that imports onnxruntime-web. `onnxruntime-web/webgpu` (1.30)
 * carries both the WebGPU and the WASM execution providers in one wasm binary
 * (ort-wasm-simd-threaded.asyncify.wasm, ~27 MB) and is the smallest entry that
 * has WebGPU; every other entry would add its own wasm to the build.
 * wasmPaths stays unset: Vite serves and bundles ORT's .wasm/.mjs from our origin.
 */
import * as ort from 'onnxruntime-web/webgpu';

ort.env.logLevel = 'error';

/**
 * Threads for the WASM EP: needs SharedArrayBuffer, i.e. a cross-origin-isolated page/worker.
 * `maxThreads` caps it for workers whose models are too small to gain from threads (their
 * spinning threads would only compete with the other workers).
 */
export function configureWasmThreads(maxThreads = 4): number {
  const isolated = typeof crossOriginIsolated !== 'undefined' && crossOriginIsolated;
  const cores = typeof navigator !== 'undefined' ? navigator.hardwareConcurrency || 1 : 1;
  ort.env.wasm.numThreads = isolated ? Math.max(1, Math.min(maxThreads, cores)) : 1;
  // We already run inside a worker: no extra proxy worker.
  ort.env.wasm.proxy = false;
  return ort.env.wasm.numThreads;
}

export { ort };
