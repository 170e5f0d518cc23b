const FULL_HASH_LIMIT = 256 * 1024 * 1024;
const SAMPLE_BYTES = 8 * 1024 * 1024;

const hex = (buffer: ArrayBuffer) => Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, '0')).join('');

/**
 * sha256 of a file's bytes: the identity of an image across page reloads. Files over 256 MB
 * are hashed from their size plus first and last 8 MB, to avoid reading gigabytes at once.
 */
export async function contentHash(file: Blob): Promise<string> {
  if (file.size <= FULL_HASH_LIMIT) return hex(await crypto.subtle.digest('SHA-256', await file.arrayBuffer()));
  const head = await file.slice(0, SAMPLE_BYTES).arrayBuffer();
  const tail = await file.slice(file.size - SAMPLE_BYTES).arrayBuffer();
  const size = new TextEncoder().encode(`size:${file.size};`);
  const joined = new Uint8Array(size.byteLength + head.byteLength + tail.byteLength);
  joined.set(size, 0);
  joined.set(new Uint8Array(head), size.byteLength);
  joined.set(new Uint8Array(tail), size.byteLength + head.byteLength);
  return `sampled-${hex(await crypto.subtle.digest('SHA-256', joined))}`;
}
