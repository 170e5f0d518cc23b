/**
 * Which ORT execution provider a model should use. Pure logic (no ORT, no DOM)
 * so it is shared by the UI, the workers and unit tests.
 */

export const BACKENDS = ['webgpu', 'wasm'] as const;
export type Backend = (typeof BACKENDS)[number];
export type BackendPreference = 'auto' | Backend;

export const BACKEND_LABELS: Record<Backend, string> = { webgpu: 'WebGPU', wasm: 'WASM' };

export function isBackendPreference(v: unknown): v is BackendPreference {
  return v === 'auto' || v === 'webgpu' || v === 'wasm';
}

export interface BackendOverrides {
  /** `?backend=wasm`: applies to every model. */
  all?: BackendPreference;
  /** `?backend.<modelId>=webgpu`: applies to one model, wins over `all`. */
  perModel: Record<string, BackendPreference>;
}

/** Reads `?backend=` and `?backend.<modelId>=` from a URL query string; unknown values are ignored. */
export function parseBackendOverrides(search: string): BackendOverrides {
  const params = new URLSearchParams(search);
  const overrides: BackendOverrides = { perModel: {} };
  for (const [key, raw] of params) {
    const value = raw.toLowerCase();
    if (!isBackendPreference(value)) continue;
    if (key === 'backend') overrides.all = value;
    else if (key.startsWith('backend.') && key.length > 'backend.'.length) overrides.perModel[key.slice('backend.'.length)] = value;
  }
  return overrides;
}

/** The URL override for a model if any (per-model first), else null. */
export function urlOverrideFor(modelId: string, overrides: BackendOverrides): BackendPreference | null {
  return overrides.perModel[modelId] ?? overrides.all ?? null;
}

/** URL override > saved setting > auto. */
export function effectivePreference(modelId: string, overrides: BackendOverrides, settings: Record<string, BackendPreference>): BackendPreference {
  return urlOverrideFor(modelId, overrides) ?? settings[modelId] ?? 'auto';
}

export interface GpuProbe {
  /** A WebGPU adapter was returned. */
  available: boolean;
  /** It is a software/fallback adapter (e.g. SwiftShader): far slower than WASM. */
  fallback: boolean;
  description: string;
}

/**
 * Backend to try for a preference. `auto` takes WebGPU only on a real GPU: a
 * fallback adapter such as SwiftShader is 30–100× slower than WASM.
 */
export function chooseBackend(pref: BackendPreference, gpu: GpuProbe): { backend: Backend; reason: string } {
  if (pref !== 'auto') return { backend: pref, reason: `requested ${BACKEND_LABELS[pref]}` };
  if (!gpu.available) return { backend: 'wasm', reason: 'auto: no WebGPU adapter' };
  if (gpu.fallback) return { backend: 'wasm', reason: `auto: WebGPU adapter is a software fallback (${gpu.description})` };
  return { backend: 'webgpu', reason: `auto: WebGPU adapter ${gpu.description}` };
}
