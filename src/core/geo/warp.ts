import type { GeoTransform, RgbaImage } from '../raster/types';
import { applyTransform, invertTransform } from './affine';

export interface WarpedImage {
  image: RgbaImage;
  /** [minX, minY, maxX, maxY] in the image CRS. */
  extent: [number, number, number, number];
}

/**
 * Resamples a preview of a rotated/sheared image onto a north-up grid of its own CRS, so
 * that renderers that only place axis-aligned images (OpenLayers ImageStatic) can show it.
 * `preview` covers the whole image (fullWidth×fullHeight pixels) at a reduced size.
 * Nearest neighbour: it is for display only; outside pixels become transparent.
 */
export function warpToNorthUp(preview: RgbaImage, transform: GeoTransform, fullWidth: number, fullHeight: number, maxSide: number): WarpedImage {
  const corners = [
    [0, 0],
    [fullWidth, 0],
    [fullWidth, fullHeight],
    [0, fullHeight],
  ].map(([c, r]) => applyTransform(transform, c, r));
  const xs = corners.map((p) => p[0]);
  const ys = corners.map((p) => p[1]);
  const extent: [number, number, number, number] = [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
  const spanX = extent[2] - extent[0];
  const spanY = extent[3] - extent[1];
  const scale = maxSide / Math.max(spanX, spanY);
  const width = Math.max(1, Math.round(spanX * scale));
  const height = Math.max(1, Math.round(spanY * scale));
  const inverse = invertTransform(transform);
  const data = new Uint8ClampedArray(width * height * 4);
  if (!inverse) return { image: { width, height, data }, extent };
  const sx = preview.width / fullWidth;
  const sy = preview.height / fullHeight;
  for (let v = 0; v < height; v++) {
    const y = extent[3] - ((v + 0.5) / height) * spanY;
    for (let u = 0; u < width; u++) {
      const x = extent[0] + ((u + 0.5) / width) * spanX;
      const [col, row] = applyTransform(inverse, x, y);
      const pc = Math.floor(col * sx);
      const pr = Math.floor(row * sy);
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
