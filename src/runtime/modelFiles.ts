/**
 * Gets a model file's bytes: from Cache Storage when present, else downloaded
 * with progress and timeouts. Either way the bytes are checked against the
 * manifest's size and sha256 before use; bad bytes are never used or cached.
 */
import type { ModelFile } from '../core/models/manifest';
import { sha256Hex } from '../core/models/sha256';
import { deleteCachedFile, readCachedFile, writeCachedFile } from './modelCache';

export type ModelFileErrorKind = 'missing' | 'http' | 'size' | 'integrity' | 'timeout' | 'network';

export class ModelFileError extends Error {
  constructor(
    readonly kind: ModelFileErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'ModelFileError';
  }
}

export interface FileProgress {
  modelId: string;
  path: string;
  loaded: number;
  total: number;
  source: 'network' | 'cache';
}

export interface FetchTimeouts {
  /** Max wait for the response headers. */
  responseMs: number;
  /** Max gap between two body chunks: a stalled download fails instead of hanging. */
  stallMs: number;
}

export const DEFAULT_TIMEOUTS: FetchTimeouts = { responseMs: 30_000, stallMs: 30_000 };

export interface LoadFileOptions {
  /** URL of the models/ folder, ending in '/'. */
  modelsBaseUrl: string;
  timeouts?: FetchTimeouts;
  onProgress?: (p: FileProgress) => void;
}

export interface LoadedFile {
  bytes: ArrayBuffer;
  fromCache: boolean;
}

export async function loadModelFile(modelId: string, file: ModelFile, opts: LoadFileOptions): Promise<LoadedFile> {
  const cached = await readCachedFile(file);
  if (cached) {
    if (cached.byteLength === file.bytes && (await sha256Hex(cached)) === file.sha256) {
      opts.onProgress?.({ modelId, path: file.path, loaded: file.bytes, total: file.bytes, source: 'cache' });
      return { bytes: cached, fromCache: true };
    }
    await deleteCachedFile(file); // damaged cache entry: fetch again
  }

  const bytes = await downloadFile(modelId, file, opts);
  const actual = await sha256Hex(bytes);
  if (actual !== file.sha256) {
    throw new ModelFileError(
      'integrity',
      `Model "${modelId}": ${file.path} failed its sha256 check (got ${actual}, manifest expects ${file.sha256}). The download was discarded.`,
    );
  }
  await writeCachedFile(modelId, file, bytes);
  return { bytes, fromCache: false };
}

async function downloadFile(modelId: string, file: ModelFile, opts: LoadFileOptions): Promise<ArrayBuffer> {
  const timeouts = opts.timeouts ?? DEFAULT_TIMEOUTS;
  const url = new URL(file.path, opts.modelsBaseUrl).href;
  const what = `Model "${modelId}": ${file.path}`;
  const controller = new AbortController();
  let timedOut: string | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const arm = (ms: number, reason: string) => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      timedOut = reason;
      controller.abort();
    }, ms);
  };

  try {
    arm(timeouts.responseMs, `no response within ${timeouts.responseMs / 1000} s`);
    // no-store: our Cache Storage is the only cache, so the HTTP cache never holds a second copy.
    const res = await fetch(url, { signal: controller.signal, cache: 'no-store' });
    if (res.status === 404) throw new ModelFileError('missing', `${what} is missing on the server (HTTP 404 at ${url}).`);
    if (!res.ok) throw new ModelFileError('http', `${what} could not be downloaded (HTTP ${res.status} ${res.statusText} at ${url}).`);
    const type = res.headers.get('Content-Type') ?? '';
    if (type.includes('text/html')) {
      // A single-page-app server answers unknown paths with index.html and status 200.
      throw new ModelFileError('missing', `${what} is missing on the server (got an HTML page instead of the file at ${url}).`);
    }
    if (!res.body) throw new ModelFileError('network', `${what}: the response has no body.`);

    const buffer = new Uint8Array(file.bytes);
    let loaded = 0;
    const reader = res.body.getReader();
    opts.onProgress?.({ modelId, path: file.path, loaded, total: file.bytes, source: 'network' });
    for (;;) {
      arm(timeouts.stallMs, `download stalled for ${timeouts.stallMs / 1000} s at ${loaded} of ${file.bytes} bytes`);
      const { done, value } = await reader.read();
      if (done) break;
      if (loaded + value.byteLength > file.bytes) {
        controller.abort();
        throw new ModelFileError('size', `${what} is larger than the manifest's ${file.bytes} bytes; the download was discarded.`);
      }
      buffer.set(value, loaded);
      loaded += value.byteLength;
      opts.onProgress?.({ modelId, path: file.path, loaded, total: file.bytes, source: 'network' });
    }
    if (loaded !== file.bytes) {
      throw new ModelFileError('size', `${what} has ${loaded} bytes but the manifest says ${file.bytes}; the download was discarded.`);
    }
    return buffer.buffer;
  } catch (err) {
    if (err instanceof ModelFileError) throw err;
    if (timedOut) throw new ModelFileError('timeout', `${what}: ${timedOut} (${url}).`);
    throw new ModelFileError('network', `${what} could not be downloaded from ${url}: ${(err as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
}
