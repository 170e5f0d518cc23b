import { readFileSync } from 'node:fs';
import { fromArrayBuffer } from 'geotiff';
import { describe, expect, it } from 'vitest';
import { RasterError } from './errors';
import { chooseLevelIndex, openGeoTiff } from './geotiffSource';
import { readRgbaWindow } from './readWindow';
import { computeStretch } from './stretch';
import { geotiffPath } from './testing/sharedData';
import { CountingSource, rawBlock, writeTiff } from './testing/tiffWriter';
import type { RgbaImage } from './types';

const fileBytes = (name: string): Uint8Array<ArrayBuffer> => new Uint8Array(readFileSync(geotiffPath(name)));
const fileBlob = (name: string) => new Blob([fileBytes(name)]);

/** Ground truth straight from geotiff.js: the stored samples of a full-res window. */
async function rawSamples(name: string, window: [number, number, number, number], samples: number[]) {
  const bytes = fileBytes(name);
  const image = await (await fromArrayBuffer(bytes.buffer)).getImage(0);
  return image.readRasters({ window, samples, interleave: false });
}

const channel = (img: RgbaImage, c: number) => Array.from({ length: img.width * img.height }, (_, p) => img.data[p * 4 + c]);

describe('openGeoTiff on the shared rasters', () => {
  it('NAIP (RGB+NIR uint8 COG): first three bands as RGB, values untouched at full resolution', async () => {
    const source = await openGeoTiff(fileBlob('naip_2020_cog.tif'));
    expect(source.info).toMatchObject({ width: 934, height: 723, bandCount: 4, sampleKind: 'uint8', alphaBand: null, rgbBands: [0, 1, 2], nodata: 0 });
    expect(source.info.geo?.epsg).toBe(26914);
    expect(source.info.pixelSizeMetres).toBeCloseTo(5, 3);

    const window = { x: 100, y: 150, width: 512, height: 512 };
    await readRgbaWindow(source, { ...window, x: 101 }, 512, 512); // warm-up (JIT, decoder import)
    const started = performance.now();
    const img = await readRgbaWindow(source, window, 512, 512);
    const elapsed = performance.now() - started;
    console.log(`naip 512×512 full-res window: ${elapsed.toFixed(1)} ms`);
    const raw = await rawSamples('naip_2020_cog.tif', [100, 150, 612, 662], [0, 1, 2, 3]);
    for (let c = 0; c < 3; c++) expect(channel(img, c)).toEqual(Array.from(raw[c]));
    expect(channel(img, 3).every((a) => a === 255)).toBe(true); // NIR is not alpha
  });

  it('NAIP: a small whole-image read is served by the overview, not the full-res tiles', async () => {
    const bytes = fileBytes('naip_2020_cog.tif');
    const counting = new CountingSource(bytes);
    const source = await openGeoTiff(counting);
    const headerBytes = counting.bytesRead;
    await readRgbaWindow(source, { x: 0, y: 0, width: 934, height: 723 }, 64, 50);
    const pixelBytes = counting.bytesRead - headerBytes;
    console.log(`naip 64×50 preview: ${pixelBytes} bytes of ${bytes.length}`);
    // The overview is about a quarter of the file; full-res tiles would be ~3/4 of it.
    expect(pixelBytes).toBeLessThan(bytes.length * 0.35);
  });

  it('uint16 single band: percentile stretch, shared by overlapping windows', async () => {
    const source = await openGeoTiff(fileBlob('uint16_single_band_utm21n_cog.tif'));
    expect(source.info).toMatchObject({ bandCount: 1, sampleKind: 'uint16', rgbBands: [0, 0, 0] });
    const stretch = await computeStretch(source);
    expect(stretch.low[0]).toBeGreaterThanOrEqual(0);
    expect(stretch.high[0]).toBeGreaterThan(stretch.low[0] + 100);
    expect(stretch.high[0]).toBeLessThan(65535);

    const a = await readRgbaWindow(source, { x: 1000, y: 1000, width: 300, height: 200 }, 300, 200);
    const b = await readRgbaWindow(source, { x: 1100, y: 1050, width: 300, height: 200 }, 300, 200);
    let differing = 0;
    for (let y = 0; y < 150; y++) {
      for (let x = 0; x < 200; x++) if (b.data[(y * 300 + x) * 4] !== a.data[((y + 50) * 300 + x + 100) * 4]) differing++;
    }
    expect(differing).toBe(0);
    // The stretch spreads the values (the file's zero-filled corners, about half the image, stay black).
    const preview = await readRgbaWindow(source, { x: 0, y: 0, width: 2658, height: 2667 }, 256, 257);
    const red = channel(preview, 0);
    const share = (f: (v: number) => boolean) => red.filter(f).length / red.length;
    expect(share((v) => v === 255)).toBeLessThan(0.1);
    expect(share((v) => v > 64 && v < 192)).toBeGreaterThan(0.3);
    expect(channel(preview, 1)).toEqual(red);
  });

  it('vestfold (float32, nodata −3.4e38): nodata pixels are invalid and ignored by the stretch', async () => {
    const source = await openGeoTiff(fileBlob('vestfold.tif'));
    expect(source.info).toMatchObject({ sampleKind: 'float32', nodata: -3.4e38, bandCount: 1 });
    expect(source.info.geo?.epsg).toBeNull();
    const stretch = await computeStretch(source);
    expect(stretch.low[0]).toBeGreaterThan(-1e6);

    const raw = (await rawSamples('vestfold.tif', [0, 0, 950, 880], [0]))[0];
    const img = await readRgbaWindow(source, { x: 0, y: 0, width: 950, height: 880 }, 950, 880);
    const alpha = channel(img, 3);
    let nodataCount = 0;
    let mismatches = 0;
    for (let p = 0; p < raw.length; p++) {
      const isNodata = raw[p] < -1e38;
      if (isNodata) nodataCount++;
      if (alpha[p] !== (isNodata ? 0 : 255)) mismatches++;
    }
    expect(nodataCount).toBeGreaterThan(1000);
    expect(mismatches).toBe(0);
  });

  it('pix4d drone (RGBA, ExtraSamples alpha): alpha 0 marks invalid pixels', async () => {
    const source = await openGeoTiff(fileBlob('pix4d_drone_alpha_nodata.tif'));
    expect(source.info).toMatchObject({ bandCount: 3, alphaBand: 3, rgbBands: [0, 1, 2] });
    const raw = await rawSamples('pix4d_drone_alpha_nodata.tif', [0, 0, 686, 758], [0, 1, 2, 3]);
    const img = await readRgbaWindow(source, { x: 0, y: 0, width: 686, height: 758 }, 686, 758);
    expect(channel(img, 3)).toEqual(Array.from(raw[3], (a) => (a > 0 ? 255 : 0)));
    expect(channel(img, 1)).toEqual(Array.from(raw[1], (v, p) => (raw[3][p] > 0 ? v : 0)));
  });

  it('JPEG-compressed YCbCr COG comes out as RGB (matches geotiff.js readRGB within rounding)', async () => {
    const source = await openGeoTiff(fileBlob('hro_colorado_jpeg_ycbcr_cog.tif'));
    expect(source.info).toMatchObject({ width: 383, height: 232, bandCount: 3, sampleKind: 'uint8' });
    const img = await readRgbaWindow(source, { x: 0, y: 0, width: 383, height: 232 }, 383, 232);
    const image = await (await fromArrayBuffer(fileBytes('hro_colorado_jpeg_ycbcr_cog.tif').buffer)).getImage(0);
    const rgb = await image.readRGB({ interleave: true });
    let maxDiff = 0;
    for (let p = 0; p < 383 * 232; p++) for (let c = 0; c < 3; c++) maxDiff = Math.max(maxDiff, Math.abs(img.data[p * 4 + c] - rgb[p * 3 + c]));
    expect(maxDiff).toBeLessThanOrEqual(1);
    // Raw YCbCr would put G/B near 128 with a large luma/chroma gap; RGB of terrain does not.
    const raw = await image.readRasters({ interleave: false });
    expect(channel(img, 0)).not.toEqual(Array.from(raw[0]));
  });

  it('Umbra SAR (strip layout): reads only the strips a window needs', async () => {
    const bytes = fileBytes('umbra_sar_mount_yasur.tif');
    const counting = new CountingSource(bytes);
    const source = await openGeoTiff(counting);
    expect(source.info).toMatchObject({ width: 2000, height: 2000, bandCount: 1, sampleKind: 'uint8' });
    const before = counting.bytesRead;
    const img = await readRgbaWindow(source, { x: 500, y: 1000, width: 64, height: 8 }, 64, 8);
    // Uncompressed 4-row strips of 2000 px: 2 strips = 16 000 bytes (plus the offset tables once).
    expect(counting.bytesRead - before).toBeLessThan(16_000 + 2 * 4 * 500 + 1024);
    const raw = (await rawSamples('umbra_sar_mount_yasur.tif', [500, 1000, 564, 1008], [0]))[0];
    expect(channel(img, 0)).toEqual(Array.from(raw));
    expect(channel(img, 2)).toEqual(Array.from(raw));
  });

  it('refuses a text file named .tif with a clear RasterError', async () => {
    const text = new Blob(['this is not an image\n'.repeat(10)]);
    const error = await openGeoTiff(text, { name: 'notes.tif' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RasterError);
    expect((error as RasterError).reason).toBe('not-an-image');
    expect((error as RasterError).message).toMatch(/"notes\.tif" is not a TIFF file/);
  });
});

describe('openGeoTiff on synthetic layouts', () => {
  const open = (images: Parameters<typeof writeTiff>[0]) => openGeoTiff(new Blob([writeTiff(images)]), { name: 'synthetic.tif' });
  const base = { width: 8, height: 6, rowsPerStrip: 2 };
  const strips = (samples: number, bits: 8 | 16 | 32 | 64, format: 1 | 2 | 3, f: (x: number, y: number, s: number) => number) =>
    [0, 1, 2].map((strip) => rawBlock(8, 2, samples, bits, format, (x, y, s) => f(x, y + strip * 2, s)));

  it('int16 RGB in separate planes (PlanarConfiguration 2), stretched', async () => {
    const value = (x: number, y: number, s: number) => -1000 + 100 * x + 10 * y + s;
    const planes = [0, 1, 2].flatMap((s) => strips(1, 16, 2, (x, y) => value(x, y, s)));
    const source = await open([{ ...base, samplesPerPixel: 3, bitsPerSample: 16, sampleFormat: 2, photometric: 2, planar: 2, blocks: planes }]);
    expect(source.info).toMatchObject({ sampleKind: 'int16', bandCount: 3 });
    const bands = await source.readBands({ x: 2, y: 1, width: 3, height: 2 }, 3, 2);
    expect(Array.from(bands.bands[2])).toEqual([-788, -688, -588, -778, -678, -578]);
    const stretch = await computeStretch(source);
    expect(stretch.low[0]).toBeLessThan(stretch.high[0]);
    expect(stretch.low[0]).toBeGreaterThan(-1000);
  });

  it('float64 grey with NaN nodata', async () => {
    const blocks = strips(1, 64, 3, (x, y) => (x === 0 ? Number.NaN : x * 0.5 + y));
    const source = await open([{ ...base, samplesPerPixel: 1, bitsPerSample: 64, sampleFormat: 3, photometric: 1, nodata: 'nan', blocks }]);
    expect(source.info.sampleKind).toBe('float64');
    expect(source.info.nodata).toBeNaN();
    const out = await source.readBands({ x: 0, y: 0, width: 2, height: 1 }, 2, 1);
    expect(Array.from(out.valid)).toEqual([0, 1]);
    expect(out.bands[0][1]).toBe(0.5);
  });

  it('grey + alpha (2 samples)', async () => {
    const blocks = strips(2, 8, 1, (x, _y, s) => (s === 0 ? 10 * x : x < 4 ? 0 : 255));
    const source = await open([{ ...base, samplesPerPixel: 2, bitsPerSample: 8, photometric: 1, extraSamples: [2], blocks }]);
    expect(source.info).toMatchObject({ bandCount: 1, alphaBand: 1, rgbBands: [0, 0, 0] });
    const img = await readRgbaWindow(source, { x: 2, y: 0, width: 4, height: 1 }, 4, 1);
    expect(Array.from(img.data)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 40, 40, 40, 255, 50, 50, 50, 255]);
  });

  it('a 4th sample flagged alpha is data when GDAL says its colour is not alpha (NAIP-style NIR)', async () => {
    const blocks = strips(4, 8, 1, () => 7);
    const flagged = { ...base, samplesPerPixel: 4, bitsPerSample: 8, photometric: 2, extraSamples: [2], blocks };
    expect((await open([flagged])).info).toMatchObject({ bandCount: 3, alphaBand: 3 });
    const metadata = '<GDALMetadata>\n  <Item name="COLORINTERP" sample="3" role="colorinterp">Undefined</Item>\n</GDALMetadata>';
    expect((await open([{ ...flagged, gdalMetadata: metadata }])).info).toMatchObject({ bandCount: 4, alphaBand: null });
  });

  it('WhiteIsZero grey is inverted and palette images are expanded to RGB', async () => {
    const white = await open([{ ...base, samplesPerPixel: 1, bitsPerSample: 8, photometric: 0, blocks: strips(1, 8, 1, (x) => x) }]);
    expect(Array.from((await white.readBands({ x: 0, y: 0, width: 3, height: 1 }, 3, 1)).bands[0])).toEqual([255, 254, 253]);

    // TIFF colour maps: 256 reds, then greens, then blues, 16-bit.
    const ramp = [...Array(256).keys()];
    const colorMap = [...ramp.map((i) => i * 257), ...ramp.map((i) => (255 - i) * 257), ...ramp.map(() => 65535)];
    const palette = await open([{ ...base, samplesPerPixel: 1, bitsPerSample: 8, photometric: 3, colorMap, blocks: strips(1, 8, 1, (x) => x * 10) }]);
    expect(palette.info).toMatchObject({ bandCount: 3, sampleKind: 'uint8' });
    const img = await readRgbaWindow(palette, { x: 1, y: 0, width: 1, height: 1 }, 1, 1);
    expect(Array.from(img.data)).toEqual([10, 245, 255, 255]);
  });

  it('names unsupported compressions and colour models', async () => {
    const jp2 = open([{ ...base, samplesPerPixel: 1, bitsPerSample: 8, photometric: 1, compression: 34712, blocks: strips(1, 8, 1, () => 0) }]);
    await expect(jp2).rejects.toThrow(/"synthetic\.tif" uses JPEG 2000 compression/);
    await expect(jp2).rejects.toMatchObject({ reason: 'unsupported-compression' });
    const cmyk = open([{ ...base, samplesPerPixel: 4, bitsPerSample: 8, photometric: 5, blocks: strips(4, 8, 1, () => 0) }]);
    await expect(cmyk).rejects.toThrow(/CMYK colour model/);
  });

  it('chooses the coarsest level that still has the output resolution', () => {
    const levels = [{ width: 1000, height: 800 }, { width: 500, height: 400 }, { width: 250, height: 200 }];
    const whole = { x: 0, y: 0, width: 1000, height: 800 };
    expect(chooseLevelIndex(levels, whole, 1000, 800)).toBe(0);
    expect(chooseLevelIndex(levels, whole, 501, 401)).toBe(0);
    expect(chooseLevelIndex(levels, whole, 500, 400)).toBe(1);
    expect(chooseLevelIndex(levels, whole, 300, 240)).toBe(1);
    expect(chooseLevelIndex(levels, whole, 64, 64)).toBe(2);
    expect(chooseLevelIndex(levels, { x: 0, y: 0, width: 100, height: 100 }, 100, 100)).toBe(0);
  });
});
