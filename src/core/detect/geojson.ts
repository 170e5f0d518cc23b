/**
 * Detections → GeoJSON. Georeferenced images: polygons in EPSG:4326 (lon, lat) through the
 * image's own transform and CRS. Plain images: the same polygons in image pixels (x right,
 * y down), marked by a `coordinates: "image-pixels"` property, since GeoJSON has no pixel CRS.
 * Rings run counter-clockwise on a north-up map (RFC 7946).
 */
import type { FeatureCollection, Polygon } from 'geojson';
import { pixelToLonLat } from '../geo/footprint';
import type { GeoReference } from '../raster/types';
import type { Detection } from './types';

export type CoordinateSpace = 'EPSG:4326' | 'image-pixels';

export interface DetectionProperties {
  class: string;
  score: number;
  coordinates: CoordinateSpace;
  image: string;
}

export function detectionsToGeoJson(detections: readonly Detection[], classes: readonly string[], geo: GeoReference | null, imageName: string): FeatureCollection<Polygon, DetectionProperties> {
  const toLonLat = geo ? pixelToLonLat(geo) : null;
  const coordinates: CoordinateSpace = toLonLat ? 'EPSG:4326' : 'image-pixels';
  const point = (x: number, y: number) => (toLonLat ? toLonLat(x, y) : [x, y]);
  return {
    type: 'FeatureCollection',
    features: detections.map((d) => ({
      type: 'Feature',
      geometry: { type: 'Polygon', coordinates: [[point(d.x1, d.y1), point(d.x1, d.y2), point(d.x2, d.y2), point(d.x2, d.y1), point(d.x1, d.y1)]] },
      properties: { class: classes[d.classIndex], score: Number(d.score.toFixed(4)), coordinates, image: imageName },
    })),
  };
}
