/**
 * The eight dihedral views (flips and quarter turns) of a square CHW image tensor. Aerial images
 * have no canonical orientation, so a model can average its outputs over several views.
 * Same semantics as `apply_view` in models/retrieval/features.py (PyTorch on [..., H, W]).
 */
export const DIHEDRAL_VIEWS = ['id', 'hflip', 'vflip', 'rot90', 'rot180', 'rot270', 'transpose', 'antitranspose'] as const;
export type DihedralView = (typeof DIHEDRAL_VIEWS)[number];

export function isDihedralView(v: unknown): v is DihedralView {
  return typeof v === 'string' && (DIHEDRAL_VIEWS as readonly string[]).includes(v);
}

/** Source (row, column) read for output (y, x) of an n×n plane. */
function sourceOf(view: DihedralView, y: number, x: number, n: number): [number, number] {
  const last = n - 1;
  switch (view) {
    case 'id':
      return [y, x];
    case 'hflip':
      return [y, last - x];
    case 'vflip':
      return [last - y, x];
    case 'rot90': // counter-clockwise quarter turn, torch.rot90(a, 1, (-2, -1))
      return [x, last - y];
    case 'rot180':
      return [last - y, last - x];
    case 'rot270':
      return [last - x, y];
    case 'transpose':
      return [x, y];
    case 'antitranspose':
      return [last - x, last - y];
  }
}

/**
 * Writes `view` of the image at `src[srcOffset…]` ([channels, n, n], row-major) into
 * `dst[dstOffset…]`. The image must be square: quarter turns and transposes swap height and width.
 */
export function dihedralViewCHW(
  src: Float32Array,
  srcOffset: number,
  channels: number,
  height: number,
  width: number,
  view: DihedralView,
  dst: Float32Array,
  dstOffset: number,
): void {
  if (height !== width) throw new Error(`dihedral views need a square image, got ${width}×${height}`);
  const n = width;
  const plane = n * n;
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      const [sy, sx] = sourceOf(view, y, x, n);
      const from = srcOffset + sy * n + sx;
      const to = dstOffset + y * n + x;
      for (let c = 0; c < channels; c++) dst[to + c * plane] = src[from + c * plane];
    }
  }
}
