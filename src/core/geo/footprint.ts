import proj4 from 'proj4';
import type { GeoReference } from '../raster/types';
import { applyTransform, invertTransform } from './affine';

export type LonLat = [number, number];

/** Converts image pixel positions to longitude/latitude (WGS84). */
export function pixelToLonLat(geo: GeoReference): (col: number, row: number) => LonLat {
  const toWgs84 = proj4(geo.proj4, 'EPSG:4326');
  return (col, row) => toWgs84.forward(applyTransform(geo.transform, col, row)) as LonLat;
}

/**
 * The four image corners (pixel corners, clockwise from top-left) in lon/lat.
 * Longitudes are unwrapped relative to the first corner so that an image crossing the
 * antimeridian keeps a compact footprint (e.g. 179.5 … 180.7 instead of 179.5 … −179.3).
 */
export function footprintLonLat(geo: GeoReference, width: number, height: number): LonLat[] {
  const toLonLat = pixelToLonLat(geo);
  const corners = [toLonLat(0, 0), toLonLat(width, 0), toLonLat(width, height), toLonLat(0, height)];
  const lon0 = corners[0][0];
  return corners.map(([lon, lat]) => [lon + 360 * Math.round((lon0 - lon) / 360), lat]);
}

/** [minLon, minLat, maxLon, maxLat] of the footprint (densified edges, antimeridian-safe). */
export function boundsLonLat(geo: GeoReference, width: number, height: number, stepsPerEdge = 16): [number, number, number, number] {
  const toLonLat = pixelToLonLat(geo);
  const points: LonLat[] = [];
  for (let i = 0; i <= stepsPerEdge; i++) {
    const t = i / stepsPerEdge;
    points.push(toLonLat(t * width, 0), toLonLat(width, t * height), toLonLat((1 - t) * width, height), toLonLat(0, (1 - t) * height));
  }
  const lon0 = points[0][0];
  const lons = points.map(([lon]) => lon + 360 * Math.round((lon0 - lon) / 360));
  const lats = points.map(([, lat]) => lat);
  return [Math.min(...lons), Math.min(...lats), Math.max(...lons), Math.max(...lats)];
}

/** Inverse of pixelToLonLat: lon/lat (any longitude wrap) → fractional pixel, or null. */
export function lonLatToPixel(geo: GeoReference): (lon: number, lat: number) => [number, number] | null {
  const fromWgs84 = proj4(geo.proj4, 'EPSG:4326');
  const inverse = invertTransform(geo.transform);
  return (lon, lat) => {
    if (!inverse) return null;
    const wrapped = ((((lon + 180) % 360) + 360) % 360) - 180;
    const xy = fromWgs84.inverse([wrapped, lat]);
    if (!Number.isFinite(xy[0]) || !Number.isFinite(xy[1])) return null;
    return applyTransform(inverse, xy[0], xy[1]);
  };
}

/** True when the footprint crosses the ±180° meridian. */
export function crossesAntimeridian(bounds: [number, number, number, number]): boolean {
  return bounds[0] < -180 || bounds[2] > 180 || (bounds[0] < 180 && bounds[2] > 180);
}
