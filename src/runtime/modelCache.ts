/**
 * Verified model bytes in Cache Storage, keyed by sha256 so a file is fetched
 * once per content version, whatever its URL. Usable from window and workers.
 */
import type { ModelEntry, ModelFile } from '../core/models/manifest';

export const MODEL_CACHE_NAME = 'rslens-models-v1';
const KEY_PREFIX = '/__rslens-model-cache/sha256/';

function cacheKey(sha256: string): string {
  return new URL(KEY_PREFIX + sha256, self.location.origin).href;
}

function openCache(): Promise<Cache> {
  if (typeof caches === 'undefined') throw new Error('Cache Storage is unavailable (needs a secure context: https or localhost)');
  return caches.open(MODEL_CACHE_NAME);
}

export async function readCachedFile(file: ModelFile): Promise<ArrayBuffer | null> {
  const hit = await (await openCache()).match(cacheKey(file.sha256));
  return hit ? hit.arrayBuffer() : null;
}

/** Only call with bytes whose sha256 was verified. */
export async function writeCachedFile(modelId: string, file: ModelFile, bytes: ArrayBuffer): Promise<void> {
  const headers = {
    'Content-Type': 'application/octet-stream',
    'Content-Length': String(bytes.byteLength),
    'X-Model-Id': modelId,
    'X-Model-Path': file.path,
  };
  await (await openCache()).put(cacheKey(file.sha256), new Response(bytes, { headers }));
}

export async function deleteCachedFile(file: ModelFile): Promise<boolean> {
  return (await openCache()).delete(cacheKey(file.sha256));
}

export async function isFileCached(file: ModelFile): Promise<boolean> {
  return (await (await openCache()).match(cacheKey(file.sha256))) !== undefined;
}

export async function deleteCachedModel(entry: ModelEntry): Promise<void> {
  await Promise.all(entry.files.map(deleteCachedFile));
}

export interface CacheUsage {
  entries: number;
  bytes: number;
  /** sha256 → size of every cached file, including ones no longer in the manifest. */
  bySha256: Map<string, number>;
}

export async function cacheUsage(): Promise<CacheUsage> {
  const cache = await openCache();
  const bySha256 = new Map<string, number>();
  for (const req of await cache.keys()) {
    const sha = new URL(req.url).pathname.slice(KEY_PREFIX.length);
    const res = await cache.match(req);
    const size = Number(res?.headers.get('Content-Length') ?? NaN);
    bySha256.set(sha, Number.isFinite(size) ? size : (await res!.arrayBuffer()).byteLength);
  }
  let bytes = 0;
  for (const size of bySha256.values()) bytes += size;
  return { entries: bySha256.size, bytes, bySha256 };
}

export async function clearModelCache(): Promise<void> {
  await caches.delete(MODEL_CACHE_NAME);
}
