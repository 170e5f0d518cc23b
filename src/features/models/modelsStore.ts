/**
 * Models slice: the manifest, what is cached, per-model backend settings
 * (persisted; URL overrides win) and the state of loads/runs in the workers.
 */
import * as Comlink from 'comlink';
import { create } from 'zustand';
import { createJSONStorage, persist } from 'zustand/middleware';
import { findModel, runtimeFiles, validateManifest, type ModelManifest } from '../../core/models/manifest';
import {
  effectivePreference,
  parseBackendOverrides,
  urlOverrideFor,
  type BackendOverrides,
  type BackendPreference,
} from '../../runtime/backendPreference';
import { cacheUsage, deleteCachedModel } from '../../runtime/modelCache';
import { DEFAULT_TIMEOUTS, type FetchTimeouts, type FileProgress } from '../../runtime/modelFiles';
import type { LoadResult, SelfTestResult } from '../../workers/modelWorkerApi';
import { callModelWorker } from '../../workers/modelWorkers';

export type ModelStatus = 'idle' | 'loading' | 'ready' | 'running' | 'error';

export interface ModelUiState {
  status: ModelStatus;
  /** Bytes of the current download or cache read, per file path. */
  progress: Record<string, FileProgress>;
  load: LoadResult | null;
  selfTest: SelfTestResult | null;
  error: string | null;
}

export interface CacheInfo {
  /** Every runtime file of the model is cached. */
  cached: boolean;
  cachedBytes: number;
}

interface ModelsState {
  manifest: ModelManifest | null;
  manifestError: string | null;
  cache: Record<string, CacheInfo>;
  totalCacheBytes: number;
  models: Record<string, ModelUiState>;
  /** Saved per-model backend choice (Models panel). */
  backendSettings: Record<string, BackendPreference>;
  urlOverrides: BackendOverrides;

  init(): Promise<void>;
  refreshCache(): Promise<void>;
  setBackend(modelId: string, pref: BackendPreference): void;
  preferenceFor(modelId: string): BackendPreference;
  urlOverrideFor(modelId: string): BackendPreference | null;
  /** Loads a model into its family's worker, or into the worker `workerKey` (e.g. "caption-expert#1"). */
  loadModel(modelId: string, workerKey?: string): Promise<LoadResult | null>;
  /** Loads unless the model is already loaded in that worker (a model may live in several workers). */
  ensureLoaded(modelId: string, workerKey?: string): Promise<LoadResult | null>;
  testRun(modelId: string): Promise<SelfTestResult | null>;
  deleteModel(modelId: string): Promise<void>;
}

const modelsBaseUrl = () => new URL(`${import.meta.env.BASE_URL}models/`, location.href).href;

/** `?modelTimeoutMs=` shortens the fetch timeouts (tests of stalled downloads). */
function timeoutsFromUrl(): FetchTimeouts {
  const ms = Number(new URLSearchParams(location.search).get('modelTimeoutMs'));
  return ms > 0 ? { responseMs: ms, stallMs: ms } : DEFAULT_TIMEOUTS;
}

/** Worker keys each model id is loaded in ("search", "caption", "caption-expert#1", …). */
const loadedIn = new Map<string, Set<string>>();

const idleModel = (): ModelUiState => ({ status: 'idle', progress: {}, load: null, selfTest: null, error: null });

export const useModelsStore = create<ModelsState>()(
  persist(
    (set, get) => {
      const patchModel = (id: string, patch: Partial<ModelUiState>) =>
        set((s) => ({ models: { ...s.models, [id]: { ...(s.models[id] ?? idleModel()), ...patch } } }));

      return {
        manifest: null,
        manifestError: null,
        cache: {},
        totalCacheBytes: 0,
        models: {},
        backendSettings: {},
        urlOverrides: parseBackendOverrides(location.search),

        async init() {
          try {
            const res = await fetch(new URL('manifest.json', modelsBaseUrl()), { cache: 'no-cache' });
            if (!res.ok) throw new Error(`HTTP ${res.status} for models/manifest.json`);
            const manifest = validateManifest(await res.json());
            set({ manifest, manifestError: null, models: Object.fromEntries(manifest.models.map((m) => [m.id, get().models[m.id] ?? idleModel()])) });
          } catch (err) {
            set({ manifestError: `Could not load the model manifest: ${(err as Error).message}` });
            return;
          }
          await get().refreshCache();
        },

        async refreshCache() {
          const manifest = get().manifest;
          if (!manifest) return;
          const usage = await cacheUsage();
          const cache: Record<string, CacheInfo> = {};
          for (const m of manifest.models) {
            const files = runtimeFiles(m);
            const cachedFiles = files.filter((f) => usage.bySha256.has(f.sha256));
            cache[m.id] = { cached: cachedFiles.length === files.length, cachedBytes: cachedFiles.reduce((n, f) => n + f.bytes, 0) };
          }
          set({ cache, totalCacheBytes: usage.bytes });
        },

        setBackend(modelId, pref) {
          set((s) => ({ backendSettings: { ...s.backendSettings, [modelId]: pref } }));
        },

        preferenceFor(modelId) {
          return effectivePreference(modelId, get().urlOverrides, get().backendSettings);
        },

        urlOverrideFor(modelId) {
          return urlOverrideFor(modelId, get().urlOverrides);
        },

        async loadModel(modelId, workerKey) {
          const manifest = get().manifest;
          if (!manifest) return null;
          const entry = findModel(manifest, modelId);
          patchModel(modelId, { status: 'loading', progress: {}, error: null, selfTest: null });
          try {
            const onProgress = Comlink.proxy((p: FileProgress) =>
              set((s) => {
                const m = s.models[modelId] ?? idleModel();
                return { models: { ...s.models, [modelId]: { ...m, progress: { ...m.progress, [p.path]: p } } } };
              }),
            );
            const options = { backend: get().preferenceFor(modelId), modelsBaseUrl: modelsBaseUrl(), timeouts: timeoutsFromUrl() };
            const worker = workerKey ?? entry.family;
            const load = await callModelWorker(worker, (w) => w.load(entry, options, onProgress));
            loadedIn.set(modelId, new Set([...(loadedIn.get(modelId) ?? []), worker]));
            patchModel(modelId, { status: 'ready', load });
            return load;
          } catch (err) {
            patchModel(modelId, { status: 'error', load: null, error: (err as Error).message });
            return null;
          } finally {
            await get().refreshCache();
          }
        },

        async ensureLoaded(modelId, workerKey) {
          const entry = get().manifest && findModel(get().manifest!, modelId);
          const worker = workerKey ?? entry?.family;
          const model = get().models[modelId];
          if (worker && model?.status === 'ready' && model.load && loadedIn.get(modelId)?.has(worker)) return model.load;
          return get().loadModel(modelId, workerKey);
        },

        async testRun(modelId) {
          const load = await get().loadModel(modelId);
          if (!load) return null;
          const entry = findModel(get().manifest!, modelId);
          patchModel(modelId, { status: 'running' });
          try {
            const selfTest = await callModelWorker(entry.family, (w) => w.selfTest(modelId));
            patchModel(modelId, { status: 'ready', selfTest });
            return selfTest;
          } catch (err) {
            patchModel(modelId, { status: 'error', error: (err as Error).message });
            return null;
          } finally {
            await get().refreshCache();
          }
        },

        async deleteModel(modelId) {
          const entry = findModel(get().manifest!, modelId);
          for (const worker of loadedIn.get(modelId) ?? []) await callModelWorker(worker, (w) => w.dispose(modelId));
          loadedIn.delete(modelId);
          await deleteCachedModel(entry);
          patchModel(modelId, idleModel());
          await get().refreshCache();
        },
      };
    },
    {
      name: 'rslens-model-settings',
      storage: createJSONStorage(() => localStorage),
      partialize: (s) => ({ backendSettings: s.backendSettings }),
    },
  ),
);
