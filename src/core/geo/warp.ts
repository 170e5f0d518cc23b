import type { RgbaImage } from '../raster/types';

/** Maps a point of the output CRS to fractional full-resolution pixel coordinates (or null). */
export type MapToPixel = (x: number, y: number) => [number, number] | null;

export interface WarpedImage {
  image: RgbaImage;
  /** [minX, minY, maxX, maxY] in the image CRS. */
  extent: [number, number, number, number];
}

/**
 * Resamples a whole-image preview onto a north-up grid covering `extent` of some output CRS,
 * so that renderers which only place axis-aligned images (OpenLayers ImageStatic) can show
 * rotated, GCP-placed or antimeridian-crossing images. `preview` covers the whole image
 * (fullWidth×fullHeight pixels) at a reduced size. Nearest neighbour: display only.
 */
export function warpPreview(
  preview: RgbaImage,
  fullWidth: number,
  fullHeight: number,
  extent: [number, number, number, number],
  mapToPixel: MapToPixel,
  maxSide: number,
): WarpedImage {
  const spanX = extent[2] - extent[0];
  const spanY = extent[3] - extent[1];
  const scale = maxSide / Math.max(spanX, spanY);
  const width = Math.max(1, Math.round(spanX * scale));
  const height = Math.max(1, Math.round(spanY * scale));
  const data = new Uint8ClampedArray(width * height * 4);
  const sx = preview.width / fullWidth;
  const sy = preview.height / fullHeight;
  for (let v = 0; v < height; v++) {
    const y = extent[3] - ((v + 0.5) / height) * spanY;
    for (let u = 0; u < width; u++) {
      const pixel = mapToPixel(extent[0] + ((u + 0.5) / width) * spanX, y);
      if (!pixel) continue;
      const pc = Math.floor(pixel[0] * sx);
      const pr = Math.floor(pixel[1] * sy);
      if (pc < 0 || pr < 0 || pc >= preview.width || pr >= preview.height) continue;
      const src = (pr * preview.width + pc) * 4;
      const dst = (v * width + u) * 4;
      data[dst] = preview.data[src];
      data[dst + 1] = preview.data[src + 1];
      data[dst + 2] = preview.data[src + 2];
      data[dst + 3] = preview.data[src + 3];
    }
  }
  return { image: { width, height, data }, extent };
}
