/**
 * RasterSource over a (Geo)TIFF via geotiff.js. Reads only the tiles/strips a window needs,
 * from the coarsest pyramid level (overview) that still has at least the output resolution,
 * in bounded stripes, and resamples with our own deterministic kernels (resample.ts).
 */
import { GeoTIFF, fromArrayBuffer, type GeoTIFFImage } from 'geotiff';
import { loadGeoTags, readGeoReference } from '../geo/georef';
import { BlobRangeSource } from './blobRangeSource';
import { RasterError } from './errors';
import { checkReadRequest, resampleWindow, type SourceChunk } from './resample';
import type { BandWindow, PixelWindow, RasterInfo, RasterSource, ReadBandsOptions, SampleKind } from './types';

/** A geotiff.js byte source (what GeoTIFF.fromSource takes), e.g. one that counts bytes. */
export type GeoTiffByteSource = Parameters<typeof GeoTIFF.fromSource>[0];

export interface OpenGeoTiffOptions {
  /** Most decoded source pixels held at once while reading a window (default 2²¹). */
  maxPixelsPerStripe?: number;
  /** Name used in error messages (e.g. the file name). */
  name?: string;
  signal?: AbortSignal;
}

const DEFAULT_MAX_PIXELS_PER_STRIPE = 1 << 21;

const COMPRESSIONS: Record<number, { name: string; supported: boolean }> = {
  1: { name: 'none', supported: true },
  2: { name: 'CCITT RLE', supported: false },
  3: { name: 'CCITT fax 3', supported: false },
  4: { name: 'CCITT fax 4', supported: false },
  5: { name: 'LZW', supported: true },
  6: { name: 'old-style JPEG', supported: false },
  7: { name: 'JPEG', supported: true },
  8: { name: 'Deflate', supported: true },
  32773: { name: 'PackBits', supported: true },
  32946: { name: 'Deflate', supported: true },
  34712: { name: 'JPEG 2000', supported: false },
  34887: { name: 'LERC', supported: true },
  34925: { name: 'LZMA', supported: false },
  50000: { name: 'Zstandard', supported: true },
  50001: { name: 'WebP', supported: true },
  50002: { name: 'JPEG XL', supported: false },
};

const PHOTOMETRIC = { whiteIsZero: 0, blackIsZero: 1, rgb: 2, palette: 3, mask: 4, ycbcr: 6 } as const;
const SUBFILE_REDUCED = 1;
const SUBFILE_MASK = 4;
const EXTRA_ASSOCIATED_ALPHA = 1;
const EXTRA_UNASSOCIATED_ALPHA = 2;

/** How stored samples turn into the data bands we expose. */
type ColourModel = 'grey' | 'inverted-grey' | 'rgb' | 'ycbcr' | 'palette';

interface Level {
  image: GeoTIFFImage;
  width: number;
  height: number;
  blockHeight: number;
  /** Loads the tile/strip offset tables once, so each block costs one byte-range read. */
  offsetsLoaded?: Promise<unknown>;
}

interface Layout {
  model: ColourModel;
  samplesPerPixel: number;
  /** Stored sample index per data band (for ycbcr/palette: bands 0–2 derive from several/one samples). */
  dataSamples: number[];
  alphaSample: number | null;
  nodata: number | null;
  /** Maximum integer value, for WhiteIsZero inversion. */
  maxValue: number;
  /** Palette as 0–255 floats: [r…, g…, b…], or null. */
  palette: Float32Array | null;
}

function label(name: string | undefined): string {
  return name ? `"${name}"` : 'the TIFF file';
}

async function tag(image: GeoTIFFImage, name: string): Promise<unknown> {
  return image.fileDirectory.loadValue(name as never);
}

function numberList(value: unknown): number[] {
  if (value == null) return [];
  if (typeof value === 'number') return [value];
  if (Array.isArray(value) || ArrayBuffer.isView(value)) return Array.from(value as ArrayLike<number>, Number);
  return [];
}

/** GDAL's per-sample colour interpretation, which overrides ExtraSamples (e.g. NAIP's NIR band). */
function gdalColourInterpretation(metadata: unknown): Map<number, string> {
  const result = new Map<number, string>();
  if (typeof metadata !== 'string') return result;
  for (const item of metadata.matchAll(/<Item\b([^>]*)>([^<]*)<\/Item>/g)) {
    const attributes = item[1];
    if (!/name="COLORINTERP"/.test(attributes)) continue;
    const sample = /sample="(\d+)"/.exec(attributes);
    if (sample) result.set(Number(sample[1]), item[2].trim().toLowerCase());
  }
  return result;
}

function parseNodata(value: unknown): number | null {
  if (typeof value !== 'string') return null;
  // eslint-disable-next-line no-control-regex
  const text = value.replace(/\u0000/g, '').trim().toLowerCase();
  if (!text) return null;
  if (text === 'nan') return Number.NaN;
  const number = Number(text);
  return Number.isNaN(number) ? null : number;
}

function sampleKindOf(format: number, bits: number, name: string | undefined): SampleKind {
  const kinds: Record<string, SampleKind> = {
    '1:8': 'uint8', '1:16': 'uint16', '1:32': 'uint32',
    '2:8': 'int8', '2:16': 'int16', '2:32': 'int32',
    '3:16': 'float32', '3:32': 'float32', '3:64': 'float64',
  };
  const kind = kinds[`${format}:${bits}`];
  if (!kind) {
    const formatName = ({ 1: 'unsigned', 2: 'signed', 3: 'floating-point' } as Record<number, string>)[format] ?? `format ${format}`;
    throw new RasterError('unsupported-layout', `${label(name)} uses ${bits}-bit ${formatName} samples, which RS Lens cannot read`);
  }
  return kind;
}

async function readLayout(image: GeoTIFFImage, name: string | undefined): Promise<{ layout: Layout; kind: SampleKind }> {
  const spp = image.getSamplesPerPixel();
  const bits = numberList(await tag(image, 'BitsPerSample'));
  const formats = numberList(await tag(image, 'SampleFormat'));
  const format = formats[0] ?? 1;
  if (bits.some((b) => b !== bits[0]) || formats.some((f) => f !== format)) {
    throw new RasterError('unsupported-layout', `${label(name)} mixes sample types between bands, which RS Lens cannot read`);
  }
  const kind = sampleKindOf(format, bits[0] ?? 8, name);

  const photometric = numberList(await tag(image, 'PhotometricInterpretation'))[0] ?? PHOTOMETRIC.blackIsZero;
  const extra = numberList(await tag(image, 'ExtraSamples'));
  const interpretation = gdalColourInterpretation(await tag(image, 'GDAL_METADATA'));
  let alphaSample: number | null = null;
  extra.forEach((value, k) => {
    const sample = spp - extra.length + k;
    const gdal = interpretation.get(sample);
    const isAlpha = value === EXTRA_ASSOCIATED_ALPHA || value === EXTRA_UNASSOCIATED_ALPHA;
    if (alphaSample === null && isAlpha && (gdal === undefined || gdal === 'alpha')) alphaSample = sample;
  });

  let model: ColourModel;
  let palette: Float32Array | null = null;
  switch (photometric) {
    case PHOTOMETRIC.whiteIsZero:
      model = format === 3 ? 'grey' : 'inverted-grey';
      break;
    case PHOTOMETRIC.blackIsZero:
      model = 'grey';
      break;
    case PHOTOMETRIC.rgb:
      model = 'rgb';
      break;
    case PHOTOMETRIC.ycbcr: {
      const compression = numberList(await tag(image, 'Compression'))[0] ?? 1;
      const subsampling = numberList(await tag(image, 'YCbCrSubSampling'));
      const subsampled = subsampling.length === 2 && (subsampling[0] !== 1 || subsampling[1] !== 1);
      if (compression !== 7 && subsampled) {
        throw new RasterError('unsupported-layout', `${label(name)} stores chroma-subsampled YCbCr without JPEG compression, which RS Lens cannot read`);
      }
      if (kind !== 'uint8' || spp < 3) {
        throw new RasterError('unsupported-layout', `${label(name)} has a YCbCr layout RS Lens cannot read`);
      }
      model = 'ycbcr';
      break;
    }
    case PHOTOMETRIC.palette: {
      const colourMap = numberList(await tag(image, 'ColorMap'));
      if (!colourMap.length) throw new RasterError('unsupported-layout', `${label(name)} is a palette image without a colour map`);
      palette = Float32Array.from(colourMap, (v) => v / 257);
      model = 'palette';
      break;
    }
    default: {
      const names: Record<number, string> = { 4: 'transparency mask', 5: 'CMYK', 8: 'CIE L*a*b*', 9: 'ICC L*a*b*', 10: 'ITU L*a*b*', 32844: 'LogL', 32845: 'LogLuv' };
      throw new RasterError('unsupported-layout', `${label(name)} uses the ${names[photometric] ?? `#${photometric}`} colour model, which RS Lens cannot read`);
    }
  }

  const stored = Array.from({ length: spp }, (_, i) => i).filter((i) => i !== alphaSample);
  const dataSamples = model === 'palette' ? [0, 0, 0] : stored;
  const bitsOfSample = bits[0] ?? 8;
  return {
    kind: model === 'palette' ? 'uint8' : kind,
    layout: {
      model,
      samplesPerPixel: spp,
      dataSamples,
      alphaSample,
      nodata: parseNodata(await tag(image, 'GDAL_NODATA')),
      maxValue: format === 1 ? 2 ** bitsOfSample - 1 : 2 ** (bitsOfSample - 1) - 1,
      palette,
    },
  };
}

async function checkCompression(image: GeoTIFFImage, name: string | undefined): Promise<void> {
  const code = numberList(await tag(image, 'Compression'))[0] ?? 1;
  const known = COMPRESSIONS[code];
  if (!known?.supported) {
    const what = known ? `${known.name} compression` : `compression method #${code}`;
    throw new RasterError('unsupported-compression', `${label(name)} uses ${what}, which RS Lens cannot decode; convert it (e.g. gdal_translate -co COMPRESS=DEFLATE)`);
  }
}

async function openTiff(input: ArrayBuffer | Blob | GeoTiffByteSource, options: OpenGeoTiffOptions): Promise<GeoTIFF> {
  try {
    if (input instanceof ArrayBuffer) return await fromArrayBuffer(input, options.signal);
    const source = typeof Blob !== 'undefined' && input instanceof Blob ? new BlobRangeSource(input) : (input as GeoTiffByteSource);
    return await GeoTIFF.fromSource(source, undefined, options.signal);
  } catch (error) {
    if (error instanceof Error && /byte order|magic number|offset byte-size/i.test(error.message)) {
      throw new RasterError('not-an-image', `${label(options.name)} is not a TIFF file (${error.message.replace(/\.$/, '').toLowerCase()})`, { cause: error });
    }
    throw error;
  }
}

/** Bound on IFDs scanned for overviews (COGs have a handful; a damaged chain must not loop). */
const MAX_IFDS = 64;

/**
 * Main image plus its reduced-resolution overviews (masks and odd-shaped subfiles skipped),
 * finest first. A damaged IFD after the main image ends the scan instead of failing the file.
 */
async function readLevels(tiff: GeoTIFF, main: GeoTIFFImage, name: string | undefined): Promise<Level[]> {
  await checkCompression(main, name);
  const levels: Level[] = [{ image: main, width: main.getWidth(), height: main.getHeight(), blockHeight: main.getTileHeight() }];
  for (let i = 1; i < MAX_IFDS; i++) {
    let image: GeoTIFFImage;
    try {
      image = await tiff.getImage(i);
    } catch {
      break; // no more IFDs (or an unreadable one)
    }
    const subfile = numberList(await tag(image, 'NewSubfileType'))[0] ?? 0;
    const isOverview = (subfile & SUBFILE_REDUCED) !== 0 && (subfile & SUBFILE_MASK) === 0;
    if (!isOverview || image.getSamplesPerPixel() !== main.getSamplesPerPixel() || image.getWidth() >= main.getWidth()) continue;
    await checkCompression(image, name);
    levels.push({ image, width: image.getWidth(), height: image.getHeight(), blockHeight: image.getTileHeight() });
  }
  return levels.sort((a, b) => b.width - a.width);
}

/** The coarsest level with at least as many pixels per full-res pixel as the output needs. */
export function chooseLevelIndex(
  levels: readonly { width: number; height: number }[],
  window: PixelWindow,
  outWidth: number,
  outHeight: number,
): number {
  const fullPerOutX = window.width / outWidth;
  const fullPerOutY = window.height / outHeight;
  const tolerance = 1 + 1e-9;
  let best = 0;
  levels.forEach((level, i) => {
    const factorX = levels[0].width / level.width;
    const factorY = levels[0].height / level.height;
    if (factorX <= fullPerOutX * tolerance && factorY <= fullPerOutY * tolerance && level.width < levels[best].width) best = i;
  });
  return best;
}

function isNodata(value: number, nodata: number | null): boolean {
  if (value !== value) return true; // NaN is never data
  if (nodata === null) return false;
  // GDAL_NODATA is decimal text; float32 samples hold its rounded value (e.g. −3.4e38).
  return value === nodata || value === Math.fround(nodata);
}

class GeoTiffSource implements RasterSource {
  constructor(
    readonly info: RasterInfo,
    private readonly levels: Level[],
    private readonly layout: Layout,
    private readonly maxPixelsPerStripe: number,
    private readonly name: string | undefined,
  ) {}

  async readBands(window: PixelWindow, outWidth: number, outHeight: number, options: ReadBandsOptions = {}): Promise<BandWindow> {
    checkReadRequest(window, outWidth, outHeight);
    const bands = options.bands ?? Array.from({ length: this.info.bandCount }, (_, i) => i);
    for (const band of bands) {
      if (!Number.isInteger(band) || band < 0 || band >= this.info.bandCount) {
        throw new RasterError('invalid-request', `band ${band} does not exist (the image has ${this.info.bandCount})`);
      }
    }
    const level = this.levels[chooseLevelIndex(this.levels, window, outWidth, outHeight)];
    const result = await resampleWindow({
      window,
      outWidth,
      outHeight,
      fullWidth: this.info.width,
      fullHeight: this.info.height,
      levelWidth: level.width,
      levelHeight: level.height,
      bandCount: bands.length,
      blockHeight: level.blockHeight,
      maxPixelsPerStripe: this.maxPixelsPerStripe,
      signal: options.signal,
      readStripe: (x, y, cols, rows) => this.readStripe(level, x, y, cols, rows, bands, options.signal),
    });
    return result;
  }

  private async readStripe(level: Level, x: number, y: number, cols: number, rows: number, bands: readonly number[], signal?: AbortSignal): Promise<SourceChunk> {
    const { layout } = this;
    level.offsetsLoaded ??= loadBlockOffsets(level.image);
    await level.offsetsLoaded;

    const samples = this.samplesFor(bands);
    let rasters: ArrayLike<number>[];
    try {
      rasters = await level.image.readRasters({ window: [x, y, x + cols, y + rows], samples: [...samples], interleave: false, signal });
    } catch (error) {
      if (signal?.aborted) throw error;
      const reason = error instanceof Error ? error.message : String(error);
      throw new RasterError('decode-failed', `could not decode ${label(this.name)} (${reason})`, { cause: error });
    }
    const stored = (sample: number) => rasters[samples.indexOf(sample)];
    const pixels = cols * rows;

    // Validity: alpha > 0, and not nodata/NaN in every data sample read (like GDAL's per-dataset mask).
    let valid: Uint8Array | null = null;
    const checkValues = layout.nodata !== null || this.info.sampleKind.startsWith('float');
    if (layout.alphaSample !== null || checkValues) {
      valid = new Uint8Array(pixels).fill(1);
      const alpha = layout.alphaSample !== null ? stored(layout.alphaSample) : null;
      const dataArrays = samples.filter((s) => s !== layout.alphaSample).map(stored);
      for (let p = 0; p < pixels; p++) {
        if (alpha && alpha[p] <= 0) {
          valid[p] = 0;
        } else if (checkValues && dataArrays.length) {
          let allNodata = true;
          for (const array of dataArrays) {
            if (!isNodata(array[p], layout.nodata)) {
              allNodata = false;
              break;
            }
          }
          if (allNodata) valid[p] = 0;
        }
      }
    }

    return { colStart: x, rowStart: y, cols, rows, bands: bands.map((band) => this.bandValues(band, stored, pixels)), valid };
  }

  /** Stored samples needed for these data bands (plus alpha). */
  private samplesFor(bands: readonly number[]): number[] {
    const { layout } = this;
    const set = new Set<number>();
    for (const band of bands) {
      if (layout.model === 'ycbcr' && band < 3) [0, 1, 2].forEach((s) => set.add(s));
      else set.add(layout.dataSamples[band]);
    }
    if (layout.alphaSample !== null) set.add(layout.alphaSample);
    return [...set].sort((a, b) => a - b);
  }

  private bandValues(band: number, stored: (sample: number) => ArrayLike<number>, pixels: number): ArrayLike<number> {
    const { layout } = this;
    switch (layout.model) {
      case 'grey':
      case 'rgb':
        return stored(layout.dataSamples[band]);
      case 'inverted-grey': {
        const values = stored(layout.dataSamples[band]);
        const out = new Float32Array(pixels);
        for (let p = 0; p < pixels; p++) out[p] = layout.maxValue - values[p];
        return out;
      }
      case 'palette': {
        const index = stored(0);
        const palette = layout.palette as Float32Array;
        const offset = (band * palette.length) / 3;
        const out = new Float32Array(pixels);
        for (let p = 0; p < pixels; p++) out[p] = palette[offset + index[p]] ?? 0;
        return out;
      }
      case 'ycbcr': {
        if (band >= 3) return stored(layout.dataSamples[band]);
        // geotiff.js's JPEG decoder returns raw Y, Cb, Cr: convert (JFIF full range, as geotiff's readRGB).
        const [y, cb, cr] = [stored(0), stored(1), stored(2)];
        const out = new Float32Array(pixels);
        for (let p = 0; p < pixels; p++) {
          const v =
            band === 0 ? y[p] + 1.402 * (cr[p] - 128)
            : band === 1 ? y[p] - 0.34414 * (cb[p] - 128) - 0.71414 * (cr[p] - 128)
            : y[p] + 1.772 * (cb[p] - 128);
          out[p] = v < 0 ? 0 : v > 255 ? 255 : v;
        }
        return out;
      }
    }
  }
}

async function loadBlockOffsets(image: GeoTIFFImage): Promise<unknown> {
  const [offsets, counts] = image.isTiled ? ['TileOffsets', 'TileByteCounts'] : ['StripOffsets', 'StripByteCounts'];
  return Promise.all([tag(image, offsets), tag(image, counts)]);
}

/**
 * Open a (Geo)TIFF — an in-memory ArrayBuffer, a Blob/File (read by byte ranges, never whole)
 * or a geotiff.js byte source — as a RasterSource. Throws RasterError for non-TIFF input and
 * for compressions/layouts we cannot decode.
 */
export async function openGeoTiff(input: ArrayBuffer | Blob | GeoTiffByteSource, options: OpenGeoTiffOptions = {}): Promise<RasterSource> {
  const { name } = options;
  const tiff = await openTiff(input, options);
  let main: GeoTIFFImage;
  try {
    main = await tiff.getImage(0);
  } catch (error) {
    throw new RasterError('decode-failed', `${label(name)} has no readable image (${error instanceof Error ? error.message : error})`, { cause: error });
  }
  const { layout, kind } = await readLayout(main, name);
  const levels = await readLevels(tiff, main, name);

  let georef: ReturnType<typeof readGeoReference>;
  try {
    await loadGeoTags(main);
    georef = readGeoReference(main);
  } catch (error) {
    georef = { geo: null, pixelSizeMetres: null, geoNote: `georeferencing could not be read (${error instanceof Error ? error.message : error})` };
  }

  const bandCount = layout.model === 'palette' ? 3 : layout.dataSamples.length;
  const info: RasterInfo = {
    width: main.getWidth(),
    height: main.getHeight(),
    bandCount,
    sampleKind: kind,
    nodata: layout.nodata,
    alphaBand: layout.alphaSample,
    rgbBands: bandCount >= 3 ? [0, 1, 2] : [0, 0, 0],
    geo: georef.geo,
    pixelSizeMetres: georef.pixelSizeMetres,
    geoNote: georef.geoNote,
  };
  return new GeoTiffSource(info, levels, layout, options.maxPixelsPerStripe ?? DEFAULT_MAX_PIXELS_PER_STRIPE, name);
}
