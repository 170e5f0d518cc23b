import type { RasterSource } from '../../core/raster/types';

/** Live handles of loaded images (not serialisable, so kept out of the store). */
export interface ImageHandle {
  file: File;
  source: RasterSource;
}

const handles = new Map<string, ImageHandle>();

export const imageRegistry = {
  set: (id: string, handle: ImageHandle) => void handles.set(id, handle),
  get: (id: string) => handles.get(id),
  delete: (id: string) => void handles.delete(id),
};
