import { openRasterFile } from '../io/openRasterFile';
import type { RasterSource } from '../core/raster/types';

/**
 * One RasterSource per dropped File inside a worker: a job over many windows of the same
 * image opens (and for JPEG/PNG decodes) it once. A failed open is not cached.
 */
export class RasterSourceCache {
  private readonly sources = new WeakMap<Blob, Promise<RasterSource>>();

  get(file: Blob, name: string): Promise<RasterSource> {
    let pending = this.sources.get(file);
    if (!pending) {
      pending = openRasterFile(file, name);
      this.sources.set(file, pending);
      pending.catch(() => this.sources.delete(file));
    }
    return pending;
  }
}
