import { test, expect, type Page } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { fromArrayBuffer } from 'geotiff';
import proj4 from 'proj4';
import { dropFiles, fileFromDisk, sharedFile, trackPageErrors } from './helpers';

const layerRow = (page: Page, name: string) => page.locator(`[data-testid="layer-row"][data-name="${name}"]`);
const problem = (page: Page, name: string) => page.getByTestId('load-problem').filter({ hasText: name });

/** The four corners the NAIP file declares (tiepoint + pixel scale), as a lon/lat bounding box. */
async function declaredNaipBounds(path: string) {
  const bytes = readFileSync(path);
  const tiff = await fromArrayBuffer(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const image = await tiff.getImage();
  const tie = image.fileDirectory.getValue('ModelTiepoint') as number[];
  const scale = image.fileDirectory.getValue('ModelPixelScale') as number[];
  const utm14 = proj4('+proj=utm +zone=14 +ellps=GRS80 +units=m +no_defs', 'EPSG:4326');
  const [x0, y0] = [tie[3], tie[4]];
  const [x1, y1] = [x0 + image.getWidth() * scale[0], y0 - image.getHeight() * scale[1]];
  const corners = [
    [x0, y0],
    [x1, y0],
    [x1, y1],
    [x0, y1],
  ].map((p) => utm14.forward(p));
  const lons = corners.map((c) => c[0]);
  const lats = corners.map((c) => c[1]);
  return [Math.min(...lons), Math.min(...lats), Math.max(...lons), Math.max(...lats)];
}

test.describe('map workspace', () => {
  test('a dropped NAIP COG lands where its georeferencing says (within a pixel)', async ({ page }) => {
    const errors = trackPageErrors(page);
    await page.goto('/');
    const path = sharedFile('data/geotiff/naip_2020_cog.tif');
    await dropFiles(page, [fileFromDisk(path)]);
    const row = layerRow(page, 'naip_2020_cog.tif');
    await expect(row).toBeVisible();
    await expect(row.getByTestId('layer-crs')).toHaveText('EPSG:26914');
    await expect(row).toContainText('934×723 px');
    await expect(row).toContainText('5.00 m/px');
    const extent = JSON.parse((await row.getAttribute('data-extent-lonlat'))!) as number[];
    const expected = await declaredNaipBounds(path);
    const pixelLon = 5 / (111_320 * Math.cos((47 * Math.PI) / 180));
    const pixelLat = 5 / 111_320;
    extent.forEach((v, i) => expect(Math.abs(v - expected[i])).toBeLessThan(i % 2 === 0 ? pixelLon : pixelLat));
    // North Dakota.
    expect(extent[0]).toBeGreaterThan(-104.1);
    expect(extent[2]).toBeLessThan(-96.5);
    expect(extent[1]).toBeGreaterThan(45.9);
    expect(extent[3]).toBeLessThan(49.1);
    await expect(page.getByTestId('thumbnail')).toHaveCount(1);
    expect(errors).toEqual([]);
  });

  test('a JPEG and a PNG are shown in pixel coordinates and listed', async ({ page }) => {
    const errors = trackPageErrors(page);
    await page.goto('/');
    await dropFiles(page, [fileFromDisk(sharedFile('data/rsicd/images/airport_1.jpg')), fileFromDisk(sharedFile('data/dota/images/P0706.png'))]);
    await expect(layerRow(page, 'airport_1.jpg')).toContainText('224×224 px');
    await expect(layerRow(page, 'P0706.png')).toContainText('1111×1182 px');
    await expect(layerRow(page, 'P0706.png').getByTestId('layer-crs')).toHaveText('pixel coordinates');
    await expect(page.getByTestId('thumbnail')).toHaveCount(2);
    // The last loaded picture is shown in its own pixel frame, with a way back to the map.
    await expect(page.getByTestId('frame-banner')).toContainText('P0706.png');
    await page.getByRole('button', { name: 'Back to map' }).click();
    await expect(page.getByTestId('frame-banner')).toHaveCount(0);
    await page.getByRole('button', { name: 'Zoom to airport_1.jpg' }).click();
    await expect(page.getByTestId('frame-banner')).toContainText('airport_1.jpg');
    expect(errors).toEqual([]);
  });

  test('the file picker loads files too', async ({ page }) => {
    await page.goto('/');
    await page.getByTestId('file-input').setInputFiles(sharedFile('data/geotiff/wildfires_wgs84.tif'));
    await expect(layerRow(page, 'wildfires_wgs84.tif').getByTestId('layer-crs')).toHaveText('EPSG:4326');
  });

  test('bad files get a clear message naming the file; earlier layers stay', async ({ page }) => {
    const errors = trackPageErrors(page);
    await page.goto('/');
    await dropFiles(page, [fileFromDisk(sharedFile('data/geotiff/naip_2020_cog.tif'))]);
    await expect(layerRow(page, 'naip_2020_cog.tif')).toBeVisible();

    const jpeg = readFileSync(sharedFile('data/rsicd/images/airport_1.jpg'));
    const tiff = readFileSync(sharedFile('data/geotiff/landsat7_rgb_byte_utm18n.tif'));
    const unsupported = Buffer.from(tiff);
    patchCompression(unsupported, 34712); // JPEG 2000: not decodable here
    const bad = [
      { name: 'truncated.jpg', bytes: jpeg.subarray(0, Math.floor(jpeg.length / 2)), reason: /truncated|decode|incomplete|corrupt/i },
      { name: 'empty.png', bytes: Buffer.alloc(0), reason: /empty|0 bytes/i },
      { name: 'notes.tif', bytes: Buffer.from('these are my field notes, not a GeoTIFF\n'), reason: /not .*(image|TIFF)|unrecognised|unknown format/i },
      { name: 'jpeg2000.tif', bytes: unsupported, reason: /compression/i },
    ];
    for (const file of bad) {
      await dropFiles(page, [file]);
      await expect(problem(page, file.name)).toBeVisible();
      await expect(problem(page, file.name)).toContainText(file.reason);
      await expect(layerRow(page, 'naip_2020_cog.tif')).toBeVisible();
    }
    await expect(page.getByTestId('layer-row')).toHaveCount(1);
    // Still working: a good file loads after the bad ones.
    await dropFiles(page, [fileFromDisk(sharedFile('data/rsicd/images/airport_1.jpg'))]);
    await expect(layerRow(page, 'airport_1.jpg')).toBeVisible();
    await expect(page.getByTestId('layer-row')).toHaveCount(2);
    expect(errors).toEqual([]);
  });

  test('awkward real rasters each load or explain why', async ({ page }) => {
    // Correctness, not speed: every dropped raster is also auto-captioned, so on a busy 2-core machine a
    // load can take longer than the default 20 s.
    test.setTimeout(300_000);
    const errors = trackPageErrors(page);
    await page.goto('/');
    const names = [
      'uint16_single_band_utm21n_cog.tif',
      'vestfold.tif',
      'uint16_dateline_utm60n_cog.tif',
      'gcp_georeferenced.tif',
      'umbra_sar_mount_yasur.tif',
      'hro_colorado_jpeg_ycbcr_cog.tif',
      'pix4d_drone_alpha_nodata.tif',
      'landsat_2020_swir_nir_r_g.tif',
      'landsat7_rgb_byte_utm18n.tif',
    ];
    for (const name of names) {
      await dropFiles(page, [fileFromDisk(sharedFile(`data/geotiff/${name}`))]);
      await expect(layerRow(page, name).or(problem(page, name))).toBeVisible({ timeout: 60_000 });
    }
    // These must actually load (they are valid georeferenced rasters).
    for (const name of names) await expect(layerRow(page, name)).toBeVisible();
    await expect(layerRow(page, 'vestfold.tif').getByTestId('layer-crs')).toHaveText('custom CRS (no EPSG code)');
    await expect(layerRow(page, 'gcp_georeferenced.tif')).toContainText(/control points/);
    // Vestfold Hills, Antarctica; the dateline COG straddles ±180° without spanning the globe.
    const vestfold = JSON.parse((await layerRow(page, 'vestfold.tif').getAttribute('data-extent-lonlat'))!) as number[];
    expect(vestfold[1]).toBeLessThan(-67);
    expect(vestfold[0]).toBeGreaterThan(70);
    const dateline = JSON.parse((await layerRow(page, 'uint16_dateline_utm60n_cog.tif').getAttribute('data-extent-lonlat'))!) as number[];
    expect(Math.abs(dateline[2] - dateline[0]) % 360).toBeLessThan(10);
    expect(errors).toEqual([]);
  });

  test('remove and visibility', async ({ page }) => {
    await page.goto('/');
    await dropFiles(page, [fileFromDisk(sharedFile('data/rsicd/images/airport_1.jpg')), fileFromDisk(sharedFile('data/rsicd/images/beach_1.jpg'))]);
    await expect(page.getByTestId('layer-row')).toHaveCount(2);
    await page.getByRole('checkbox', { name: 'Show beach_1.jpg' }).uncheck();
    await expect(page.getByRole('checkbox', { name: 'Show beach_1.jpg' })).not.toBeChecked();
    await page.getByRole('button', { name: 'Remove airport_1.jpg' }).click();
    await expect(page.getByTestId('layer-row')).toHaveCount(1);
    await expect(page.getByTestId('thumbnail')).toHaveCount(1);
  });
});

/** Rewrites the Compression tag (259) of the first IFD of a little-endian classic TIFF. */
function patchCompression(buf: Buffer, value: number): void {
  if (buf.toString('latin1', 0, 2) !== 'II') throw new Error('fixture must be little-endian');
  const ifd = buf.readUInt32LE(4);
  const count = buf.readUInt16LE(ifd);
  for (let i = 0; i < count; i++) {
    const entry = ifd + 2 + i * 12;
    if (buf.readUInt16LE(entry) === 259) {
      buf.writeUInt16LE(value, entry + 8);
      return;
    }
  }
  throw new Error('no Compression tag');
}
