/**
 * Node (CLI): image file path → RasterSource, with the same sniffing and the same core
 * window reader as the browser. TIFFs are read by byte ranges through a file-backed Blob;
 * JPEG and PNG are decoded in JS (jpeg-js — the same decoder the browser uses — and pngjs;
 * PNG is lossless, so pngjs and the browser agree). WebP/GIF/BMP are browser-only.
 */
import { openAsBlob } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { PNG } from 'pngjs';
import { decodeJpeg } from '../../core/raster/decodeJpeg';
import { RasterError } from '../../core/raster/errors';
import { openGeoTiff } from '../../core/raster/geotiffSource';
import { createPixelSource, type DecodedPixels } from '../../core/raster/pixelSource';
import { SNIFF_BYTES, TAIL_BYTES, sniffImageFormat, truncationError, unrecognisedFormatError } from '../../core/raster/sniff';
import type { RasterSource } from '../../core/raster/types';

async function readRange(path: string, start: number, length: number): Promise<Uint8Array> {
  const file = await open(path, 'r');
  try {
    const buffer = new Uint8Array(length);
    const { bytesRead } = await file.read(buffer, 0, length, start);
    return buffer.subarray(0, bytesRead);
  } finally {
    await file.close();
  }
}

function decodePng(data: Buffer, name: string): DecodedPixels {
  try {
    // pngjs expands palette/grey and scales 16-bit samples to 8 bits, giving RGBA.
    const image = PNG.sync.read(data);
    return { width: image.width, height: image.height, data: new Uint8Array(image.data.buffer, image.data.byteOffset, image.data.length), channels: 4 };
  } catch (error) {
    throw new RasterError('decode-failed', `"${name}" could not be decoded as PNG (${error instanceof Error ? error.message : error})`, { cause: error });
  }
}

/** Open an image file for the CLI. Throws RasterError naming the file and the reason. */
export async function readImageFile(path: string): Promise<RasterSource> {
  const name = basename(path);
  const { size } = await stat(path);
  const head = await readRange(path, 0, SNIFF_BYTES);
  const format = sniffImageFormat(head);
  if (!format) throw unrecognisedFormatError(name, head, size);
  if (format === 'tiff') return openGeoTiff(await openAsBlob(path), { name });
  if (format !== 'jpeg' && format !== 'png') {
    throw new RasterError('unsupported-format', `"${name}" is ${format.toUpperCase()}; the CLI reads TIFF, JPEG and PNG (the app reads it)`);
  }
  const truncated = truncationError(name, format, await readRange(path, Math.max(0, size - TAIL_BYTES), TAIL_BYTES));
  if (truncated) throw truncated;
  const data = await readFile(path);
  return createPixelSource(format === 'jpeg' ? decodeJpeg(data, name) : decodePng(data, name));
}
