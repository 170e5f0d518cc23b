import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { afterAll, describe, expect, it } from 'vitest';
import { RasterError } from '../../core/raster/errors';
import { readRgbaWindow } from '../../core/raster/readWindow';
import { geotiffPath, sharedPath } from '../../core/raster/testing/sharedData';
import { readImageFile } from './readImageFile';

const scratch = mkdtempSync(join(tmpdir(), 'rslens-readimage-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function scratchFile(name: string, content: Uint8Array | string): string {
  const path = join(scratch, name);
  writeFileSync(path, content);
  return path;
}

async function failure(path: string): Promise<RasterError> {
  const error = await readImageFile(path).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(RasterError);
  return error as RasterError;
}

describe('readImageFile', () => {
  it('decodes a JPEG (RSICD) to the same pixels as jpeg-js', async () => {
    const path = sharedPath('data', 'rsicd', 'images', '00001.jpg');
    const source = await readImageFile(path);
    expect(source.info).toMatchObject({ width: 224, height: 224, bandCount: 3, sampleKind: 'uint8', alphaBand: null, geo: null });
    const img = await readRgbaWindow(source, { x: 0, y: 0, width: 224, height: 224 }, 224, 224);
    const reference = jpeg.decode(readFileSync(path), { useTArray: true, formatAsRGBA: true });
    expect(Buffer.from(img.data).equals(Buffer.from(reference.data))).toBe(true);
  });

  it('decodes a PNG (DOTA) and reads windows of it', async () => {
    const path = sharedPath('data', 'dota', 'images', 'P0706.png');
    const source = await readImageFile(path);
    expect(source.info).toMatchObject({ width: 1111, height: 1182, bandCount: 3 });
    const reference = PNG.sync.read(readFileSync(path));
    const img = await readRgbaWindow(source, { x: 1000, y: 1100, width: 111, height: 82 }, 111, 82);
    let wrong = 0;
    for (let y = 0; y < 82; y++) {
      for (let x = 0; x < 111; x++) {
        for (let c = 0; c < 4; c++) if (img.data[(y * 111 + x) * 4 + c] !== reference.data[((1100 + y) * 1111 + 1000 + x) * 4 + c]) wrong++;
      }
    }
    expect(wrong).toBe(0);
  });

  it('opens GeoTIFFs by byte ranges with georeferencing', async () => {
    const source = await readImageFile(geotiffPath('naip_2020_cog.tif'));
    expect(source.info).toMatchObject({ width: 934, height: 723, bandCount: 4 });
    expect(source.info.geo?.epsg).toBe(26914);
  });

  it('sniffs content, not extensions: a JPEG named .tif still opens', async () => {
    const path = scratchFile('really-a-jpeg.tif', readFileSync(sharedPath('data', 'rsicd', 'images', '00002.jpg')));
    expect((await readImageFile(path)).info.width).toBe(224);
  });

  it('refuses a text file named .tif, an empty file and a truncated JPEG/PNG with clear messages', async () => {
    const text = await failure(scratchFile('notes.tif', 'id,lat,lon\n1,59.1,10.2\n'));
    expect(text.reason).toBe('not-an-image');
    expect(text.message).toMatch(/"notes\.tif" contains text, not an image/);

    expect((await failure(scratchFile('empty.jpg', ''))).message).toBe('"empty.jpg" is empty (0 bytes)');

    const jpegBytes = readFileSync(sharedPath('data', 'rsicd', 'images', '00003.jpg'));
    const cutJpeg = await failure(scratchFile('cut.jpg', jpegBytes.subarray(0, Math.floor(jpegBytes.length / 2))));
    expect(cutJpeg.reason).toBe('truncated');
    expect(cutJpeg.message).toMatch(/"cut\.jpg" is incomplete/);

    const pngBytes = readFileSync(sharedPath('data', 'dota', 'images', 'P0706.png'));
    expect((await failure(scratchFile('cut.png', pngBytes.subarray(0, 5000)))).reason).toBe('truncated');
  });

  it('refuses a TIFF header with garbage after it as undecodable, naming the file', async () => {
    const bytes = new Uint8Array(64);
    bytes.set([0x49, 0x49, 42, 0, 200, 0, 0, 0]); // first IFD offset beyond the end
    const error = await failure(scratchFile('broken.tif', bytes));
    expect(error.reason).toBe('decode-failed');
    expect(error.message).toMatch(/^"broken\.tif" has no readable image/);
  });

  it('says which formats the CLI lacks', async () => {
    const webp = new Uint8Array(32);
    webp.set(Array.from('RIFF\0\0\0\0WEBPVP8 ', (c) => c.charCodeAt(0)));
    expect((await failure(scratchFile('a.webp', webp))).message).toMatch(/"a\.webp" is WEBP; the CLI reads TIFF, JPEG and PNG/);
  });
});
