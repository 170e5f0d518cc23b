/**
 * Test-only: a tiny classic-TIFF writer for synthetic files (layouts the shared data lacks,
 * and huge images whose tiles all point at the same few bytes so the file stays small).
 */

export interface TiffImageSpec {
  width: number;
  height: number;
  samplesPerPixel: number;
  bitsPerSample: number;
  /** 1 unsigned, 2 signed, 3 float. */
  sampleFormat?: number;
  photometric: number;
  planar?: 1 | 2;
  compression?: number;
  /** 2 = horizontal differencing (apply horizontalDifferencing to the raw blocks yourself). */
  predictor?: number;
  /** Tiled layout when given, else strips of `rowsPerStrip` rows. */
  tile?: { width: number; height: number };
  rowsPerStrip?: number;
  /** Encoded bytes of every block in TIFF order; a repeated Uint8Array object is stored once. */
  blocks: Uint8Array[];
  subfileType?: number;
  extraSamples?: number[];
  nodata?: string;
  colorMap?: number[];
  gdalMetadata?: string;
}

const SHORT = 3;
const LONG = 4;
const ASCII = 2;

interface Entry {
  tag: number;
  type: number;
  values: number[];
}

function entriesOf(spec: TiffImageSpec, offsets: number[], counts: number[]): Entry[] {
  const spp = spec.samplesPerPixel;
  const e: Entry[] = [
    { tag: 256, type: LONG, values: [spec.width] },
    { tag: 257, type: LONG, values: [spec.height] },
    { tag: 258, type: SHORT, values: Array(spp).fill(spec.bitsPerSample) },
    { tag: 259, type: SHORT, values: [spec.compression ?? 1] },
    { tag: 262, type: SHORT, values: [spec.photometric] },
    { tag: 277, type: SHORT, values: [spp] },
    { tag: 284, type: SHORT, values: [spec.planar ?? 1] },
    { tag: 339, type: SHORT, values: Array(spp).fill(spec.sampleFormat ?? 1) },
  ];
  if (spec.predictor) e.push({ tag: 317, type: SHORT, values: [spec.predictor] });
  if (spec.subfileType) e.push({ tag: 254, type: LONG, values: [spec.subfileType] });
  if (spec.tile) {
    e.push({ tag: 322, type: LONG, values: [spec.tile.width] });
    e.push({ tag: 323, type: LONG, values: [spec.tile.height] });
    e.push({ tag: 324, type: LONG, values: offsets });
    e.push({ tag: 325, type: LONG, values: counts });
  } else {
    e.push({ tag: 273, type: LONG, values: offsets });
    e.push({ tag: 278, type: LONG, values: [spec.rowsPerStrip ?? spec.height] });
    e.push({ tag: 279, type: LONG, values: counts });
  }
  if (spec.extraSamples) e.push({ tag: 338, type: SHORT, values: spec.extraSamples });
  if (spec.colorMap) e.push({ tag: 320, type: SHORT, values: spec.colorMap });
  const ascii = (tag: number, text: string) => e.push({ tag, type: ASCII, values: [...Array.from(text, (c) => c.charCodeAt(0)), 0] });
  if (spec.gdalMetadata) ascii(42112, spec.gdalMetadata);
  if (spec.nodata) ascii(42113, spec.nodata);
  return e.sort((a, b) => a.tag - b.tag);
}

const typeSize = (type: number) => (type === SHORT ? 2 : type === LONG ? 4 : 1);

/** Little-endian classic TIFF holding `images` (first = main image, others = overviews). */
export function writeTiff(images: TiffImageSpec[]): Uint8Array<ArrayBuffer> {
  const chunks: Uint8Array[] = [];
  let length = 8;
  const append = (bytes: Uint8Array) => {
    const at = length;
    chunks.push(bytes);
    length += bytes.length;
    if (length % 2) {
      chunks.push(new Uint8Array(1));
      length += 1;
    }
    return at;
  };
  // Block data, each distinct Uint8Array once.
  const stored = new Map<Uint8Array, number>();
  const layouts = images.map((spec) => {
    const offsets = spec.blocks.map((block) => {
      let at = stored.get(block);
      if (at === undefined) stored.set(block, (at = append(block)));
      return at;
    });
    return { offsets, counts: spec.blocks.map((b) => b.length) };
  });
  // IFDs, each followed by its out-of-line values; next-IFD pointers patched afterwards.
  const ifdOffsets: number[] = [];
  const nextPointers: number[] = [];
  images.forEach((spec, i) => {
    const entries = entriesOf(spec, layouts[i].offsets, layouts[i].counts);
    const ifdSize = 2 + entries.length * 12 + 4;
    const ifd = new DataView(new ArrayBuffer(ifdSize));
    const ifdAt = length;
    let extraAt = ifdAt + ifdSize + (ifdSize % 2);
    const extras: Uint8Array[] = [];
    ifd.setUint16(0, entries.length, true);
    entries.forEach((entry, k) => {
      const base = 2 + k * 12;
      const size = typeSize(entry.type);
      ifd.setUint16(base, entry.tag, true);
      ifd.setUint16(base + 2, entry.type, true);
      ifd.setUint32(base + 4, entry.values.length, true);
      const bytes = new DataView(new ArrayBuffer(entry.values.length * size));
      entry.values.forEach((v, j) => (size === 2 ? bytes.setUint16(j * 2, v, true) : size === 4 ? bytes.setUint32(j * 4, v, true) : bytes.setUint8(j, v)));
      const raw = new Uint8Array(bytes.buffer);
      if (raw.length <= 4) new Uint8Array(ifd.buffer).set(raw, base + 8);
      else {
        ifd.setUint32(base + 8, extraAt, true);
        extras.push(raw);
        extraAt += raw.length + (raw.length % 2);
      }
    });
    ifdOffsets.push(append(new Uint8Array(ifd.buffer)));
    nextPointers.push(ifdAt + ifdSize - 4);
    extras.forEach(append);
  });
  const out = new Uint8Array(length);
  const view = new DataView(out.buffer);
  out.set([0x49, 0x49, 42, 0], 0);
  view.setUint32(4, ifdOffsets[0], true);
  let at = 8;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  ifdOffsets.forEach((_, i) => view.setUint32(nextPointers[i], ifdOffsets[i + 1] ?? 0, true));
  return out;
}

/** Raw little-endian sample bytes for a block of `width`×`height` pixels (chunky unless one sample). */
export function rawBlock(
  width: number,
  height: number,
  samples: number,
  bits: 8 | 16 | 32 | 64,
  format: 1 | 2 | 3,
  value: (x: number, y: number, sample: number) => number,
): Uint8Array<ArrayBuffer> {
  const size = bits / 8;
  const view = new DataView(new ArrayBuffer(width * height * samples * size));
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let s = 0; s < samples; s++) {
        const at = ((y * width + x) * samples + s) * size;
        const v = value(x, y, s);
        if (format === 3 && bits === 32) view.setFloat32(at, v, true);
        else if (format === 3) view.setFloat64(at, v, true);
        else if (bits === 8 && format === 2) view.setInt8(at, v);
        else if (bits === 8) view.setUint8(at, v);
        else if (bits === 16 && format === 2) view.setInt16(at, v, true);
        else if (bits === 16) view.setUint16(at, v, true);
        else if (format === 2) view.setInt32(at, v, true);
        else view.setUint32(at, v, true);
      }
    }
  }
  return new Uint8Array(view.buffer);
}

/** TIFF predictor 2 on 8-bit chunky samples: each sample minus its left neighbour, mod 256. */
export function horizontalDifferencing(raw: Uint8Array, width: number, height: number, samples: number): Uint8Array {
  const out = raw.slice();
  const rowLength = width * samples;
  for (let y = 0; y < height; y++) {
    for (let i = rowLength - 1; i >= samples; i--) out[y * rowLength + i] = (raw[y * rowLength + i] - raw[y * rowLength + i - samples]) & 255;
  }
  return out;
}

/** A geotiff.js byte source over bytes in memory that counts what is read. */
export class CountingSource {
  bytesRead = 0;
  requests = 0;
  constructor(private readonly bytes: Uint8Array) {}
  get fileSize(): number {
    return this.bytes.length;
  }
  async fetch(slices: { offset: number; length: number }[]): Promise<ArrayBuffer[]> {
    return slices.map((s) => this.read(s.offset, s.length));
  }
  async fetchSlice(s: { offset: number; length: number }) {
    return { ...s, data: this.read(s.offset, s.length) };
  }
  async close(): Promise<void> {}
  private read(offset: number, length: number): ArrayBuffer {
    const data = this.bytes.slice(offset, offset + length);
    this.bytesRead += data.length;
    this.requests += 1;
    return data.buffer;
  }
}
