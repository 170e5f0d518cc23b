import { createStore, del, get, keys, set } from 'idb-keyval';
import type { PixelWindow } from '../../core/raster/types';

/** Embeddings of one image, as stored in IndexedDB. */
export interface CachedVectors {
  windows: PixelWindow[];
  vectors: Float32Array;
  dim: number;
  /** Text-query hubness penalty per window, and the hubness model version that computed it (recomputed from the vectors when it differs). */
  penalties?: Float32Array;
  penaltyModel?: string;
}

const store = createStore('rslens-search-index', 'vectors');

/**
 * Key: model version + file content + tiling. A new model version never reads old vectors
 * (and pruneOtherModels drops them).
 */
export function cacheKey(modelKey: string, contentHash: string, tiling: string): string {
  return `${modelKey}|${contentHash}|${tiling}`;
}

export const vectorCache = {
  get: (key: string) => get<CachedVectors>(key, store),
  set: (key: string, value: CachedVectors) => set(key, value, store),
  /** Removes vectors computed by any other model version. */
  async pruneOtherModels(modelKey: string): Promise<number> {
    const stale = (await keys(store)).filter((k) => !String(k).startsWith(`${modelKey}|`));
    await Promise.all(stale.map((k) => del(k, store)));
    return stale.length;
  },
};
