import { describe, expect, it } from 'vitest';
import { datasetClassMap, parseYoloLabels, splitOf } from './dataset';
import { detectionsToGeoJson } from './geojson';
import { testSpec } from './testing';

describe('eval dataset', () => {
  it('maps aerial-cars classes through the class merge (bus/minibus/truck → large_vehicle, cyclist dropped)', () => {
    const map = datasetClassMap('aerial-cars', ['car', 'truck', 'bus', 'minibus', 'cyclist'], testSpec());
    expect(map).toEqual([0, 1, 1, 1, null]);
  });

  it('reads YOLO labels as clipped pixel boxes and skips unmapped classes', () => {
    const { boxes, labels } = parseYoloLabels('0 0.5 0.5 0.1 0.2\n4 0.1 0.1 0.1 0.1\n2 0.98 0.5 0.1 0.1\n\n', 200, 100, [0, 1, 1, 1, null]);
    expect(labels).toEqual([0, 1]);
    expect(boxes[0]).toEqual([90, 40, 110, 60]);
    expect(boxes[1][2]).toBe(200);
  });

  it('splits by group as models/detection/data.py', () => {
    expect(['MOS74.jpg', 'DJI_0762-00001.jpg', 'MunichStreet02-MOS83.jpg', 'DJI-00760-0005.jpg', 'DJI_0010.jpg', 'harlem-0001.jpg'].map(splitOf)).toEqual([
      'val',
      'val',
      'train',
      'train',
      'train',
      'test',
    ]);
  });
});

describe('detectionsToGeoJson', () => {
  const det = { x1: 0, y1: 0, x2: 100, y2: 50, score: 0.87654, classIndex: 1 };
  it('writes lon/lat polygons for georeferenced images', () => {
    const geo = { proj4: '+proj=longlat +datum=WGS84 +no_defs', epsg: 4326, transform: [10, 0.001, 0, 50, 0, -0.001] as [number, number, number, number, number, number], method: 'declared' as const };
    const fc = detectionsToGeoJson([det], ['car', 'large_vehicle'], geo, 'a.tif');
    const ring = fc.features[0].geometry.coordinates[0];
    expect(ring).toHaveLength(5);
    expect(ring[0][0]).toBeCloseTo(10, 9);
    expect(ring[0][1]).toBeCloseTo(50, 9);
    expect(ring[2][0]).toBeCloseTo(10.1, 9);
    expect(ring[2][1]).toBeCloseTo(49.95, 9);
    expect(fc.features[0].properties).toEqual({ class: 'large_vehicle', score: 0.8765, coordinates: 'EPSG:4326', image: 'a.tif' });
  });
  it('writes pixel polygons, and says so, for plain images', () => {
    const fc = detectionsToGeoJson([det], ['car', 'large_vehicle'], null, 'a.jpg');
    expect(fc.features[0].geometry.coordinates[0]).toEqual([[0, 0], [0, 50], [100, 50], [100, 0], [0, 0]]);
    expect(fc.features[0].properties.coordinates).toBe('image-pixels');
  });
});
