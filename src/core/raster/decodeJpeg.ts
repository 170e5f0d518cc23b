/**
 * JPEG → 8-bit RGBA with jpeg-js, used by BOTH the browser and the CLI: browser decoders
 * (libjpeg-turbo in Chromium) differ from jpeg-js by up to ~11 levels per pixel, so one
 * pure-JS decoder is what keeps the CLI's model evaluation identical to the app.
 * EXIF orientation is ignored (pixels as stored), in both.
 */
import jpeg from 'jpeg-js';
import { RasterError } from './errors';
import type { DecodedPixels } from './pixelSource';

const MAX_MEGAPIXELS = 250;
const MAX_MEMORY_MB = 1200;

export function decodeJpeg(bytes: Uint8Array, name: string): DecodedPixels {
  try {
    const image = jpeg.decode(bytes, {
      useTArray: true,
      formatAsRGBA: true,
      maxResolutionInMP: MAX_MEGAPIXELS,
      maxMemoryUsageInMB: MAX_MEMORY_MB,
    });
    return { width: image.width, height: image.height, data: image.data, channels: 4 };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    if (/maxResolutionInMP|memory/i.test(reason)) {
      throw new RasterError('too-large', `"${name}" is too large to decode as a JPEG (limit ${MAX_MEGAPIXELS} megapixels); convert it to a tiled GeoTIFF (COG)`, { cause: error });
    }
    throw new RasterError('decode-failed', `"${name}" could not be decoded as JPEG (${reason})`, { cause: error });
  }
}
