/**
 * Main-thread side: one worker per model family, created on first use and
 * wrapped with comlink. Add a family by adding its worker here (Vite needs the
 * literal `new Worker(new URL(...), { type: 'module' })` to bundle it).
 * A key "family#n" is the n-th worker of a family (the caption experts run in
 * several workers of the same kind, to decode in parallel).
 */
import * as Comlink from 'comlink';
import type { ModelWorkerApi } from './modelWorkerApi';

const workerFactories: Record<string, () => Worker> = {
  tiny: () => new Worker(new URL('./tiny.worker.ts', import.meta.url), { type: 'module', name: 'rslens-tiny' }),
  search: () => new Worker(new URL('./search.worker.ts', import.meta.url), { type: 'module', name: 'rslens-search' }),
  detect: () => new Worker(new URL('./detect.worker.ts', import.meta.url), { type: 'module', name: 'rslens-detect' }),
  caption: () => new Worker(new URL('./caption.worker.ts', import.meta.url), { type: 'module', name: 'rslens-caption' }),
  'caption-expert': () => new Worker(new URL('./captionExpert.worker.ts', import.meta.url), { type: 'module', name: 'rslens-caption-expert' }),
};

const familyOf = (key: string) => key.split('#')[0];

interface FamilyWorker {
  worker: Worker;
  api: Comlink.Remote<ModelWorkerApi>;
  /** Rejects when the worker fails (script or wasm load error, uncaught exception). */
  died: Promise<never>;
}

const families = new Map<string, FamilyWorker>();

export function knownFamilies(): string[] {
  return Object.keys(workerFactories);
}

export function modelWorkerFor(family: string): Comlink.Remote<ModelWorkerApi> {
  let entry = families.get(family);
  if (!entry) {
    const factory = workerFactories[familyOf(family)];
    if (!factory) throw new Error(`No worker for model family "${family}" (known: ${knownFamilies().join(', ')})`);
    const worker = factory();
    const died = new Promise<never>((_, reject) =>
      worker.addEventListener('error', (e) => {
        families.delete(family); // the next call starts a fresh worker
        reject(new Error(`The "${family}" model worker failed: ${e.message || 'script error'}`));
      }),
    );
    died.catch(() => {}); // only observed by calls in flight
    entry = { worker, api: Comlink.wrap<ModelWorkerApi>(worker), died };
    families.set(family, entry);
  }
  return entry.api;
}

/**
 * A comlink call never settles if its worker dies: race it against the
 * worker's failure so callers get an error instead of a hang.
 */
export function callModelWorker<T, Api extends ModelWorkerApi = ModelWorkerApi>(
  family: string,
  call: (api: Comlink.Remote<Api>) => Promise<T>,
): Promise<T> {
  const api = modelWorkerFor(family) as unknown as Comlink.Remote<Api>;
  return Promise.race([call(api), families.get(family)!.died]);
}

/** Ends a family's worker (and its sessions); the next call starts a fresh one. */
export function terminateModelWorker(family: string): void {
  const entry = families.get(family);
  if (!entry) return;
  entry.api[Comlink.releaseProxy]();
  entry.worker.terminate();
  families.delete(family);
}
