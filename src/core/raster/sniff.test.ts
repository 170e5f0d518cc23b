import { describe, expect, it } from 'vitest';
import { sniffImageFormat, truncationError, unrecognisedFormatError } from './sniff';

const bytes = (...values: (number | string)[]) =>
  new Uint8Array(values.flatMap((v) => (typeof v === 'string' ? Array.from(v, (c) => c.charCodeAt(0)) : [v])));

describe('sniffImageFormat', () => {
  it('recognises formats by magic bytes', () => {
    expect(sniffImageFormat(bytes('II', 42, 0, 8, 0, 0, 0))).toBe('tiff');
    expect(sniffImageFormat(bytes('MM', 0, 42))).toBe('tiff');
    expect(sniffImageFormat(bytes('II', 43, 0, 8, 0))).toBe('tiff'); // BigTIFF
    expect(sniffImageFormat(bytes(0xff, 0xd8, 0xff, 0xe0))).toBe('jpeg');
    expect(sniffImageFormat(bytes(0x89, 'PNG', 0x0d, 0x0a, 0x1a, 0x0a))).toBe('png');
    expect(sniffImageFormat(bytes('RIFF', 0, 0, 0, 0, 'WEBP'))).toBe('webp');
    expect(sniffImageFormat(bytes('GIF89a'))).toBe('gif');
    expect(sniffImageFormat(bytes('BM', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))).toBe('bmp');
    expect(sniffImageFormat(bytes('hello world'))).toBeNull();
    expect(sniffImageFormat(new Uint8Array(0))).toBeNull();
  });
});

describe('unrecognisedFormatError', () => {
  it('names the file and the reason', () => {
    expect(unrecognisedFormatError('a.tif', new Uint8Array(0), 0)).toMatchObject({ reason: 'empty-file', message: '"a.tif" is empty (0 bytes)' });
    expect(unrecognisedFormatError('b.tif', bytes('lat,lon\n1,2'), 11).message).toMatch(/"b\.tif" contains text/);
    expect(unrecognisedFormatError('c.tif', bytes('%PDF-1.7'), 100).message).toMatch(/"c\.tif" is a PDF document/);
    expect(unrecognisedFormatError('d.bin', bytes(0, 1, 2, 3), 4).message).toMatch(/starts with 00 01 02 03/);
  });
});

describe('truncationError', () => {
  it('flags a JPEG without end marker and a PNG without IEND', () => {
    expect(truncationError('x.jpg', 'jpeg', bytes(1, 2, 0xff, 0xd9))).toBeNull();
    expect(truncationError('x.jpg', 'jpeg', bytes(1, 2, 0xff, 0x00))?.reason).toBe('truncated');
    expect(truncationError('x.png', 'png', bytes(0, 0, 0, 0, 'IEND', 0xae, 0x42, 0x60, 0x82))).toBeNull();
    expect(truncationError('x.png', 'png', bytes('IDAT', 1, 2, 3))?.message).toMatch(/"x\.png" is incomplete/);
  });
});
