import { describe, expect, it } from 'vitest';
import { fromFile } from 'geotiff';
import proj4 from 'proj4';
import { join } from 'node:path';
import { readGeoReference } from './georef';
import { boundsLonLat, footprintLonLat } from './footprint';

const geotiffDir = join(process.env.RSLENS_SHARED ?? '../shared', 'data/geotiff');

async function open(name: string) {
  const tiff = await fromFile(join(geotiffDir, name));
  return tiff.getImage();
}

describe('readGeoReference on real files', () => {
  it('NAIP UTM 14N (NAD83): corners match the declared tiepoint and pixel scale', async () => {
    const image = await open('naip_2020_cog.tif');
    const { geo, pixelSizeMetres } = readGeoReference(image);
    expect(geo?.epsg).toBe(26914);
    expect(pixelSizeMetres).toBeCloseTo(5, 6);
    // Independent reference: the raw tags and a hand-written UTM 14N definition.
    const tie = image.fileDirectory.getValue('ModelTiepoint') as number[];
    const scale = image.fileDirectory.getValue('ModelPixelScale') as number[];
    const utm14 = proj4('+proj=utm +zone=14 +ellps=GRS80 +units=m +no_defs', 'EPSG:4326');
    const w = image.getWidth();
    const h = image.getHeight();
    const expected = [
      [tie[3], tie[4]],
      [tie[3] + w * scale[0], tie[4]],
      [tie[3] + w * scale[0], tie[4] - h * scale[1]],
      [tie[3], tie[4] - h * scale[1]],
    ].map((p) => utm14.forward(p));
    const corners = footprintLonLat(geo!, w, h);
    const pixelDeg = 5 / 111_320 / Math.cos((47 * Math.PI) / 180);
    corners.forEach(([lon, lat], i) => {
      expect(Math.abs(lon - expected[i][0])).toBeLessThan(pixelDeg);
      expect(Math.abs(lat - expected[i][1])).toBeLessThan(pixelDeg);
    });
    // North Dakota.
    expect(corners[0][0]).toBeGreaterThan(-104.1);
    expect(corners[0][0]).toBeLessThan(-96.5);
    expect(corners[0][1]).toBeGreaterThan(45.9);
    expect(corners[0][1]).toBeLessThan(49.1);
  });

  it('polar stereographic without EPSG code lands at Vestfold Hills, Antarctica', async () => {
    const { geo, geoNote } = readGeoReference(await open('vestfold.tif'));
    expect(geo?.epsg).toBeNull();
    expect(geoNote).toMatch(/EPSG/);
    expect(geo!.proj4).toMatch(/\+lat_0=-90 \+lat_ts=-71/);
    const [minLon, minLat, maxLon, maxLat] = boundsLonLat(geo!, 950, 880);
    expect(minLat).toBeGreaterThan(-70.5);
    expect(maxLat).toBeLessThan(-67);
    expect(minLon).toBeGreaterThan(74);
    expect(maxLon).toBeLessThan(82);
  });

  it('COG across the antimeridian keeps a compact footprint', async () => {
    const image = await open('uint16_dateline_utm60n_cog.tif');
    const { geo } = readGeoReference(image);
    const [minLon, , maxLon] = boundsLonLat(geo!, image.getWidth(), image.getHeight());
    expect(maxLon - minLon).toBeLessThan(5);
    expect(minLon).toBeLessThan(180);
    expect(maxLon).toBeGreaterThan(180);
  });

  it('GCP-only file gets an approximate affine and says so', async () => {
    const image = await open('gcp_georeferenced.tif');
    const { geo, geoNote } = readGeoReference(image);
    expect(geoNote).toMatch(/ground control points/);
    expect(geo?.epsg).toBe(4326);
  });

  it('rotated SAR transform is kept (not axis-aligned)', async () => {
    const { geo, pixelSizeMetres } = readGeoReference(await open('umbra_sar_mount_yasur.tif'));
    expect(Math.abs(geo!.transform[2])).toBeGreaterThan(0.1);
    expect(pixelSizeMetres).toBeGreaterThan(0.3);
    expect(pixelSizeMetres).toBeLessThan(1);
  });

  it('EPSG:4326 files are read lon/lat, not swapped', async () => {
    const image = await open('wildfires_wgs84.tif');
    const [minLon, minLat, maxLon, maxLat] = boundsLonLat(readGeoReference(image).geo!, image.getWidth(), image.getHeight());
    expect(minLon).toBeLessThan(-119);
    expect(maxLon).toBeGreaterThan(-124);
    expect(minLat).toBeGreaterThan(35);
    expect(maxLat).toBeLessThan(43);
  });
});
