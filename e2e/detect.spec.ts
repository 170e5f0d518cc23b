import { test, expect, type Page } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { PNG } from 'pngjs';
import { dropFiles, fileFromDisk, sharedFile, trackPageErrors } from './helpers';
import { readImageFile } from '../src/cli/io/readImageFile';
import { footprintLonLat } from '../src/core/geo/footprint';

/** A validation frame (group MOS: never trained on) and its car count from the labels. */
const FRAME = 'MOS74.jpg';
const labelledCars = readFileSync(sharedFile(`data/aerial-cars/labels/${FRAME.replace('.jpg', '.txt')}`), 'utf8')
  .split('\n')
  .filter((l) => l.trim().split(/\s+/)[0] === '0').length;

function png(width: number, height: number, alpha: number): { name: string; bytes: Buffer } {
  const image = new PNG({ width, height });
  for (let i = 0; i < width * height; i++) image.data.set([120, 130, 140, alpha], i * 4);
  return { name: `${width}x${height}-alpha${alpha}.png`, bytes: PNG.sync.write(image) };
}

async function openDetect(page: Page, files: Parameters<typeof dropFiles>[1]) {
  await dropFiles(page, files);
  await expect(page.getByTestId('layer-row')).toHaveCount(files.length, { timeout: 60_000 });
  await page.getByRole('tab', { name: 'detect' }).click();
}

async function detect(page: Page, until: 'done' | 'error' = 'done') {
  await page.getByRole('button', { name: 'Detect', exact: true }).click();
  await expect(page.getByTestId('detect-status')).toHaveAttribute('data-status', until, { timeout: 240_000 });
}

/** Moves the mouse over the map until a box's tooltip shows (boxes are drawn and hoverable). */
async function hoverSomeBox(page: Page, step = 8): Promise<string | null> {
  const box = (await page.getByTestId('map').boundingBox())!;
  const tooltip = page.getByTestId('detect-tooltip');
  for (let y = box.y + 10; y < box.y + box.height; y += step) {
    for (let x = box.x + 10; x < box.x + box.width; x += step) {
      await page.mouse.move(x, y);
      if (await tooltip.isVisible() && (await tooltip.textContent())) return tooltip.textContent();
    }
  }
  return null;
}

const countOf = async (page: Page) => Number(await page.getByTestId('detect-count').getAttribute('data-count'));

test('a validation frame: car count near the labels, boxes drawn with class and score on hover, threshold and toggles filter at once', async ({ page }) => {
  test.setTimeout(300_000);
  const errors = trackPageErrors(page);
  await page.goto('/?backend=wasm');
  await openDetect(page, [fileFromDisk(sharedFile(`data/aerial-cars/images/${FRAME}`))]);
  await detect(page);

  const cars = Number(await page.locator('[data-testid="class-count"][data-class="car"]').getAttribute('data-count'));
  expect(Math.abs(cars - labelledCars) / labelledCars, `${cars} cars detected, ${labelledCars} labelled`).toBeLessThanOrEqual(0.2);
  await expect(page.getByTestId('detect-progress')).toHaveAttribute('data-done', '4');
  expect(await hoverSomeBox(page)).toMatch(/^(car|large_vehicle|ship) (0\.[3-9]\d|1\.00)$/);

  // Threshold and toggles: the shown set changes at once, nothing is re-run.
  const atDefault = await countOf(page);
  await page.getByLabel('Score threshold').fill('0.9');
  await expect(page.getByTestId('detect-threshold')).toHaveText('0.90');
  expect(await countOf(page)).toBeLessThan(atDefault);
  await page.getByLabel('Score threshold').fill('0.3');
  await page.getByLabel('Show car').uncheck();
  expect(await countOf(page)).toBe(atDefault - cars);
  await expect(page.getByTestId('detect-status')).toHaveAttribute('data-status', 'done');
  expect(errors).toEqual([]);
});

test('a GeoTIFF: resampled toward the model resolution, GeoJSON polygons all inside the image footprint', async ({ page }) => {
  test.setTimeout(300_000);
  const path = sharedFile('data/geotiff/pix4d_drone_alpha_nodata.tif');
  await page.goto('/?backend=wasm');
  await openDetect(page, [fileFromDisk(path)]);
  await detect(page);
  await expect(page.getByTestId('detect-scale')).toContainText('resampled');
  await page.getByLabel('Score threshold').fill('0.05'); // export everything found
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export GeoJSON' }).click()]);
  const geojson = JSON.parse(readFileSync(await download.path(), 'utf8')) as GeoJSON.FeatureCollection<GeoJSON.Polygon>;
  expect(geojson.features.length).toBe(await countOf(page));
  expect(geojson.features.length).toBeGreaterThan(0);

  // The footprint from the file itself (our core georeferencing, in Node).
  const { info } = await readImageFile(path);
  const corners = footprintLonLat(info.geo!, info.width, info.height);
  const inside = ([lon, lat]: number[]) =>
    corners.every((a, i) => {
      const b = corners[(i + 1) % 4];
      return (b[0] - a[0]) * (lat - a[1]) - (b[1] - a[1]) * (lon - a[0]) <= 1e-11; // clockwise ring: inside is right of every edge
    });
  for (const feature of geojson.features) {
    expect(feature.properties).toMatchObject({ coordinates: 'EPSG:4326' });
    expect(typeof feature.properties!.class).toBe('string');
    for (const point of feature.geometry.coordinates[0]) expect(inside(point), `${point} outside ${JSON.stringify(corners)}`).toBe(true);
  }
});

test('bad input: no image, a 1-pixel image, an all-nodata image; Cancel then Clear leaves nothing drawn', async ({ page }) => {
  test.setTimeout(300_000);
  const errors = trackPageErrors(page);
  await page.goto('/?backend=wasm');
  await page.getByRole('tab', { name: 'detect' }).click();
  await detect(page, 'error');
  await expect(page.getByTestId('detect-status')).toContainText('Load an image first');

  await page.getByRole('tab', { name: 'layers' }).click();
  await openDetect(page, [png(1, 1, 255)]);
  await detect(page, 'error');
  await expect(page.getByTestId('detect-status')).toContainText('too small');

  await page.getByRole('tab', { name: 'layers' }).click();
  await dropFiles(page, [png(300, 200, 0)]);
  await expect(page.getByTestId('layer-row')).toHaveCount(2, { timeout: 60_000 });
  await page.getByRole('tab', { name: 'detect' }).click();
  await page.getByLabel('Image to detect on').selectOption({ label: '300x200-alpha0.png' });
  await detect(page);
  await expect(page.getByTestId('detect-status')).toContainText('No valid pixels');

  // A 4000×2250 frame (104 tiles): cancel after a few tiles, then clear.
  await page.getByRole('tab', { name: 'layers' }).click();
  await dropFiles(page, [fileFromDisk(sharedFile('data/aerial-cars/images/DJI_0010.jpg'))]);
  await expect(page.getByTestId('layer-row')).toHaveCount(3, { timeout: 60_000 });
  await page.getByRole('tab', { name: 'detect' }).click();
  await page.getByLabel('Image to detect on').selectOption({ label: 'DJI_0010.jpg' });
  await page.getByRole('button', { name: 'Detect', exact: true }).click();
  await expect.poll(async () => Number(await page.getByTestId('detect-progress').getAttribute('data-done')), { timeout: 120_000 }).toBeGreaterThanOrEqual(3);
  await page.getByRole('button', { name: 'Cancel' }).click();
  await expect(page.getByTestId('detect-status')).toHaveAttribute('data-status', 'cancelled', { timeout: 60_000 });
  expect(Number(await page.getByTestId('detect-progress').getAttribute('data-done'))).toBeLessThan(104);
  await page.getByRole('button', { name: 'Clear' }).click();
  await expect(page.getByTestId('detect-status')).toHaveAttribute('data-status', 'idle');
  await expect(page.getByTestId('detect-progress')).toHaveCount(0);
  expect(await hoverSomeBox(page, 16)).toBeNull();
  expect(errors).toEqual([]);
});
