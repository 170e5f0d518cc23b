/**
 * geotiff.js byte source over a Blob/File that reads only the byte ranges asked for.
 * geotiff.js's own fromBlob needs FileReader (absent in Node); Blob.slice().arrayBuffer()
 * works in browsers, workers and Node ≥ 20 (including fs.openAsBlob file-backed blobs).
 */

interface Slice {
  offset: number;
  length: number;
}

export class BlobRangeSource {
  /** Bytes handed to geotiff.js so far (for budgets and tests). */
  bytesRead = 0;
  requestCount = 0;

  constructor(private readonly blob: Blob) {}

  get fileSize(): number {
    return this.blob.size;
  }

  async fetch(slices: Slice[], signal?: AbortSignal): Promise<ArrayBuffer[]> {
    return Promise.all(slices.map(async (slice) => (await this.fetchSlice(slice, signal)).data));
  }

  async fetchSlice(slice: Slice, signal?: AbortSignal): Promise<Slice & { data: ArrayBuffer }> {
    signal?.throwIfAborted();
    const data = await this.blob.slice(slice.offset, slice.offset + slice.length).arrayBuffer();
    this.bytesRead += data.byteLength;
    this.requestCount += 1;
    return { offset: slice.offset, length: slice.length, data };
  }

  async close(): Promise<void> {}
}
