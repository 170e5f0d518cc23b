import { describe, expect, it } from 'vitest';
import { RasterError } from './errors';
import { createPixelSource } from './pixelSource';
import { readRgbaWindow, toModelTensor } from './readWindow';
import type { RgbaImage } from './types';

const rgb4x2 = createPixelSource({
  width: 4,
  height: 2,
  channels: 3,
  // row 0: red, green, blue, white; row 1: black, grey 100, (10,20,30), (30,40,50)
  data: new Uint8Array([255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 100, 100, 100, 10, 20, 30, 30, 40, 50]),
});

const pixels = (img: RgbaImage) => Array.from({ length: img.width * img.height }, (_, p) => Array.from(img.data.subarray(p * 4, p * 4 + 4)));

describe('readRgbaWindow over decoded pixels', () => {
  it('returns the stored bytes at full resolution (uint8 is not stretched)', async () => {
    const img = await readRgbaWindow(rgb4x2, { x: 2, y: 1, width: 2, height: 1 }, 2, 1);
    expect(pixels(img)).toEqual([[10, 20, 30, 255], [30, 40, 50, 255]]);
  });

  it('area-averages when downsampling (hand-computed, rounded)', async () => {
    const img = await readRgbaWindow(rgb4x2, { x: 0, y: 0, width: 4, height: 2 }, 2, 1);
    // left 2×2: (255+0+0+100)/4 = 88.75, 88.75, 25; right: (0+255+10+30)/4 = 73.75, 78.75, 147.5
    expect(pixels(img)).toEqual([[89, 89, 25, 255], [74, 79, 148, 255]]);
  });

  it('marks the part of a window outside the image transparent black', async () => {
    const img = await readRgbaWindow(rgb4x2, { x: 3, y: 1, width: 2, height: 2 }, 2, 2);
    expect(pixels(img)).toEqual([[30, 40, 50, 255], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]);
  });

  it('turns grey into R=G=B and uses alpha as validity', async () => {
    const greyAlpha = createPixelSource({ width: 2, height: 1, channels: 2, data: new Uint8Array([77, 255, 200, 0]) });
    expect(greyAlpha.info).toMatchObject({ bandCount: 1, alphaBand: 1, rgbBands: [0, 0, 0], sampleKind: 'uint8' });
    const img = await readRgbaWindow(greyAlpha, { x: 0, y: 0, width: 2, height: 1 }, 2, 1);
    expect(pixels(img)).toEqual([[77, 77, 77, 255], [0, 0, 0, 0]]);
  });

  it('drops an alpha channel that is fully opaque', () => {
    const opaque = createPixelSource({ width: 1, height: 1, channels: 4, data: new Uint8Array([1, 2, 3, 255]) });
    expect(opaque.info.alphaBand).toBeNull();
  });

  it('applies a given stretch instead of the image default', async () => {
    const img = await readRgbaWindow(rgb4x2, { x: 1, y: 1, width: 1, height: 1 }, 1, 1, { stretch: { low: [50, 50, 50], high: [150, 150, 150] } });
    expect(pixels(img)).toEqual([[128, 128, 128, 255]]);
  });

  it('rejects impossible requests with a RasterError', async () => {
    await expect(readRgbaWindow(rgb4x2, { x: 0, y: 0, width: 0, height: 1 }, 1, 1)).rejects.toBeInstanceOf(RasterError);
    await expect(readRgbaWindow(rgb4x2, { x: 0, y: 0, width: 1, height: 1 }, 1.5, 1)).rejects.toThrow(/output size/);
    await expect(rgb4x2.readBands({ x: 0, y: 0, width: 1, height: 1 }, 1, 1, { bands: [3] })).rejects.toThrow(/band 3/);
  });
});

describe('toModelTensor', () => {
  const img: RgbaImage = { width: 2, height: 1, data: new Uint8ClampedArray([255, 0, 51, 255, 0, 0, 0, 0]) };

  it('normalises (byte·scale − mean)/std into NCHW', () => {
    const t = toModelTensor(img, { mean: [0.5, 0.5, 0.5], std: [0.5, 0.25, 0.1], scale: 1 / 255, layout: 'nchw' });
    expect(Array.from(t).map((v) => +v.toFixed(5))).toEqual([1, -1, -2, -2, -3, -5]);
  });

  it('supports BGR order, NHWC, an invalid-pixel fill and writing into a batch buffer', () => {
    const out = new Float32Array(2 + 6);
    toModelTensor(img, { mean: [0, 0, 0], std: [1, 1, 1], scale: 1, layout: 'nhwc', channelOrder: 'bgr', invalidFill: [114, 115, 116] }, out, 2);
    expect(Array.from(out)).toEqual([0, 0, 51, 0, 255, 116, 115, 114]);
  });

  it('refuses a buffer that is too small', () => {
    expect(() => toModelTensor(img, { mean: [0, 0, 0], std: [1, 1, 1], scale: 1, layout: 'nchw' }, new Float32Array(5))).toThrow(RangeError);
  });
});
