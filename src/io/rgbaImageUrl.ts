import type { RgbaImage } from '../core/raster/types';

/** A PNG object URL of RGBA pixels, scaled to `width`×`height` when given (caller revokes it). */
export async function rgbaToObjectUrl(rgba: RgbaImage, width = rgba.width, height = rgba.height): Promise<string> {
  const full = new OffscreenCanvas(rgba.width, rgba.height);
  full.getContext('2d')!.putImageData(new ImageData(new Uint8ClampedArray(rgba.data), rgba.width, rgba.height), 0, 0);
  if (width === rgba.width && height === rgba.height) return URL.createObjectURL(await full.convertToBlob({ type: 'image/png' }));
  const scaled = new OffscreenCanvas(width, height);
  const ctx = scaled.getContext('2d')!;
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(full, 0, 0, width, height);
  return URL.createObjectURL(await scaled.convertToBlob({ type: 'image/png' }));
}
