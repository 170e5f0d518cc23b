import type { LoadedImage } from '../layers/layersStore';
import type { SearchHit } from './searchStore';
import { pixelToLonLat } from '../../core/geo/footprint';

export interface ExportRow {
  file: string;
  /** Tile bounds in full-res pixels. */
  x: number;
  y: number;
  width: number;
  height: number;
  /** Lon/lat bounding box of the tile for georeferenced images, else null. */
  bbox_lonlat: [number, number, number, number] | null;
  score: number;
}

export function exportRows(hits: SearchHit[], images: LoadedImage[]): ExportRow[] {
  const byId = new Map(images.map((i) => [i.id, i]));
  return hits.map(({ item, score }) => {
    const geo = byId.get(item.imageId)?.info.geo;
    const { x, y, width, height } = item.window;
    let bbox: ExportRow['bbox_lonlat'] = null;
    if (geo) {
      const toLonLat = pixelToLonLat(geo);
      const corners = [toLonLat(x, y), toLonLat(x + width, y), toLonLat(x + width, y + height), toLonLat(x, y + height)];
      const lons = corners.map((c) => c[0]);
      const lats = corners.map((c) => c[1]);
      bbox = [Math.min(...lons), Math.min(...lats), Math.max(...lons), Math.max(...lats)];
    }
    return { file: item.fileName, x, y, width, height, bbox_lonlat: bbox, score: Number(score.toFixed(6)) };
  });
}

const csvCell = (v: unknown) => {
  const s = v === null ? '' : String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

export function toCsv(rows: ExportRow[]): string {
  const header = ['file', 'x', 'y', 'width', 'height', 'min_lon', 'min_lat', 'max_lon', 'max_lat', 'score'];
  const lines = rows.map((r) => [r.file, r.x, r.y, r.width, r.height, ...(r.bbox_lonlat ?? [null, null, null, null]), r.score].map(csvCell).join(','));
  return [header.join(','), ...lines].join('\n') + '\n';
}

export function download(name: string, text: string, type: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
