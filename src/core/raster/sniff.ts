/**
 * Which image format a file holds, from its first bytes (never its extension), and a quick
 * completeness check from its last bytes. Shared by the browser (src/io) and the CLI.
 */
import { RasterError } from './errors';

export type ImageFormat = 'tiff' | 'jpeg' | 'png' | 'webp' | 'gif' | 'bmp';

/** Bytes to read from the start (and end) of a file for sniffing and the truncation check. */
export const SNIFF_BYTES = 16;
export const TAIL_BYTES = 1024;

function startsWith(bytes: Uint8Array, signature: readonly number[], at = 0): boolean {
  return signature.every((b, i) => bytes[at + i] === b);
}

const ascii = (text: string) => Array.from(text, (c) => c.charCodeAt(0));

export function sniffImageFormat(head: Uint8Array): ImageFormat | null {
  // Classic TIFF (42) and BigTIFF (43), little- and big-endian.
  if (startsWith(head, [0x49, 0x49, 0x2a, 0x00]) || startsWith(head, [0x4d, 0x4d, 0x00, 0x2a])) return 'tiff';
  if (startsWith(head, [0x49, 0x49, 0x2b, 0x00]) || startsWith(head, [0x4d, 0x4d, 0x00, 0x2b])) return 'tiff';
  if (startsWith(head, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (startsWith(head, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  if (startsWith(head, ascii('RIFF')) && startsWith(head, ascii('WEBP'), 8)) return 'webp';
  if (startsWith(head, ascii('GIF87a')) || startsWith(head, ascii('GIF89a'))) return 'gif';
  if (startsWith(head, ascii('BM')) && head.length >= 14) return 'bmp';
  return null;
}

function looksLikeText(head: Uint8Array): boolean {
  if (head.length === 0) return false;
  return head.every((b) => b === 0x09 || b === 0x0a || b === 0x0d || (b >= 0x20 && b < 0x7f) || b >= 0xc2);
}

const OTHER_FORMATS: [number[], string][] = [
  [ascii('%PDF'), 'a PDF document'],
  [[0x50, 0x4b, 0x03, 0x04], 'a ZIP archive'],
  [[0x1f, 0x8b], 'a gzip archive'],
  [[0x00, 0x00, 0x00, 0x0c, 0x6a, 0x50, 0x20, 0x20], 'a JPEG 2000 image'],
  [ascii('CDF\x01'), 'a NetCDF file'],
  [[0x89, 0x48, 0x44, 0x46], 'an HDF5 file'],
];

/** The RasterError for a file whose first bytes are no image format we read. */
export function unrecognisedFormatError(name: string, head: Uint8Array, size: number): RasterError {
  if (size === 0) return new RasterError('empty-file', `"${name}" is empty (0 bytes)`);
  const other = OTHER_FORMATS.find(([signature]) => startsWith(head, signature));
  if (other) return new RasterError('unsupported-format', `"${name}" is ${other[1]}, not an image RS Lens can open`);
  if (looksLikeText(head)) return new RasterError('not-an-image', `"${name}" contains text, not an image (whatever its extension says)`);
  const hex = Array.from(head.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join(' ');
  return new RasterError('unsupported-format', `"${name}" is not a format RS Lens can open (TIFF/GeoTIFF, JPEG, PNG, WebP, GIF, BMP); it starts with ${hex}`);
}

function contains(bytes: Uint8Array, signature: readonly number[]): boolean {
  for (let i = 0; i + signature.length <= bytes.length; i++) if (startsWith(bytes, signature, i)) return true;
  return false;
}

/**
 * A RasterError when the file's end shows it was cut short (a JPEG without its end-of-image
 * marker, a PNG without IEND); null otherwise. Decoders disagree on cut files (Chromium
 * rejects a half JPEG with a vague error, others fill the rest with grey), so we refuse them
 * up front, with a clear message, in both browser and CLI.
 */
export function truncationError(name: string, format: ImageFormat, tail: Uint8Array): RasterError | null {
  const complete =
    format === 'jpeg' ? contains(tail, [0xff, 0xd9])
    : format === 'png' ? contains(tail, ascii('IEND'))
    : true;
  return complete ? null : new RasterError('truncated', `"${name}" is incomplete: the ${format.toUpperCase()} data ends early (was the download or copy cut short?)`);
}
