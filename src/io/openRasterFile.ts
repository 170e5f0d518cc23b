/**
 * Browser (window or worker): a dropped/picked File or Blob → RasterSource.
 * The format comes from the magic bytes, not the extension. TIFFs are read by byte ranges
 * (never whole). JPEGs are decoded with jpeg-js exactly as the CLI does (browser JPEG decoders
 * differ by a few levels); PNG/WebP/GIF/BMP by the browser (createImageBitmap, read back with
 * OffscreenCanvas). All are then served by the same core window reader.
 */
import { decodeJpeg } from '../core/raster/decodeJpeg';
import { RasterError } from '../core/raster/errors';
import { openGeoTiff } from '../core/raster/geotiffSource';
import { createPixelSource } from '../core/raster/pixelSource';
import { SNIFF_BYTES, TAIL_BYTES, sniffImageFormat, truncationError, unrecognisedFormatError } from '../core/raster/sniff';
import type { RasterSource } from '../core/raster/types';

/** Decoded RGBA above this many pixels would not fit comfortably in a tab (≈ 1 GB). */
const MAX_DECODED_PIXELS = 256 * 1024 * 1024;

async function bytes(blob: Blob, start: number, end: number): Promise<Uint8Array> {
  return new Uint8Array(await blob.slice(start, end).arrayBuffer());
}

async function decodeWithBrowser(file: Blob, name: string): Promise<RasterSource> {
  let bitmap: ImageBitmap;
  try {
    // No colour-space conversion or premultiplication: keep the stored values, as the CLI does.
    bitmap = await createImageBitmap(file, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  } catch (error) {
    throw new RasterError('decode-failed', `"${name}" could not be decoded by the browser (the file may be damaged)`, { cause: error });
  }
  try {
    const { width, height } = bitmap;
    if (width * height > MAX_DECODED_PIXELS) {
      throw new RasterError('too-large', `"${name}" is ${width}×${height} pixels, too large to decode as a picture; convert it to a tiled GeoTIFF (COG)`);
    }
    const canvas = new OffscreenCanvas(width, height);
    const context = canvas.getContext('2d', { willReadFrequently: true });
    if (!context) throw new RasterError('decode-failed', `"${name}" could not be decoded: no 2D canvas available`);
    context.drawImage(bitmap, 0, 0);
    const { data } = context.getImageData(0, 0, width, height);
    return createPixelSource({ width, height, data, channels: 4 });
  } finally {
    bitmap.close();
  }
}

/** Open any supported image file. Throws RasterError naming the file and the reason. */
export async function openRasterFile(file: Blob, name = file instanceof File ? file.name : 'image'): Promise<RasterSource> {
  const head = await bytes(file, 0, SNIFF_BYTES);
  const format = sniffImageFormat(head);
  if (!format) throw unrecognisedFormatError(name, head, file.size);
  if (format === 'tiff') return openGeoTiff(file, { name });
  const truncated = truncationError(name, format, await bytes(file, Math.max(0, file.size - TAIL_BYTES), file.size));
  if (truncated) throw truncated;
  if (format === 'jpeg') return createPixelSource(decodeJpeg(await bytes(file, 0, file.size), name));
  return decodeWithBrowser(file, name);
}
