import { test, expect, type Page } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { planTiles, windowsOverlap } from '../src/core/raster/tiler';
import { dropFiles, fileFromDisk, openAskAtCentre, sharedFile, trackPageErrors } from './helpers';

/** 20 validation images each of three RSICD classes (never training images). */
function valImagesOf(classes: string[], perClass: number): { path: string; name: string; label: string }[] {
  const labels = JSON.parse(readFileSync(sharedFile('data/rsicd/labels.json'), 'utf8')) as Record<string, string>;
  const val = readFileSync(sharedFile('data/rsicd/val.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { image: string }).image);
  return classes.flatMap((label) =>
    val
      .filter((image) => labels[image.replace('images/', '')] === label)
      .slice(0, perClass)
      .map((image) => ({ path: sharedFile(`data/rsicd/${image}`), name: image.replace('images/', ''), label })),
  );
}

const sample = valImagesOf(['Airport', 'Farmland', 'Beach'], 20);
const labelOf = new Map(sample.map((s) => [s.name, s.label]));

async function loadAndIndex(page: Page) {
  await dropFiles(page, sample.map((s) => fileFromDisk(s.path)));
  await expect(page.getByTestId('layer-row')).toHaveCount(sample.length, { timeout: 60_000 });
  await page.getByRole('tab', { name: 'search' }).click();
  await page.getByRole('button', { name: /^Index 60 images/ }).click();
  await expect(page.getByTestId('index-status')).toHaveAttribute('data-status', 'ready', { timeout: 180_000 });
  return page.getByTestId('index-progress');
}

test('text search over 60 validation images finds the airports; a reload restores the index', async ({ page }) => {
  test.setTimeout(400_000);
  expect(sample).toHaveLength(60);
  const errors = trackPageErrors(page);
  await page.goto('/?backend=wasm');
  const progress = await loadAndIndex(page);
  await expect(progress).toHaveAttribute('data-embedded', '60');

  await page.getByLabel('Search query').fill('many planes are parked in an airport');
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  const hits = page.getByTestId('search-hit');
  await expect(hits).toHaveCount(20);
  const top5 = await hits.evaluateAll((els) => els.slice(0, 5).map((e) => e.getAttribute('data-file')!));
  const airports = top5.filter((f) => labelOf.get(f) === 'Airport').length;
  expect(airports, `top 5: ${top5.join(', ')}`).toBeGreaterThanOrEqual(4);
  const scores = await hits.evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-score'))));
  expect([...scores].sort((a, b) => b - a)).toEqual(scores);
  // "Show 20 more" extends the ranking without changing its head (no model run).
  await page.getByTestId('more-hits').click();
  await expect(hits).toHaveCount(40);
  const longer = await hits.evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-score'))));
  expect(longer.slice(0, 20)).toEqual(scores);
  expect([...longer].sort((a, b) => b - a)).toEqual(longer);
  await page.getByTestId('more-hits').click();
  await expect(hits).toHaveCount(60); // the whole index: nothing more to show
  await expect(page.getByTestId('more-hits')).toHaveCount(0);

  // A 10,000-character query is cut, said so, and still answered.
  await page.getByLabel('Search query').fill('airport with planes '.repeat(500));
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  await expect(page.getByTestId('query-note')).toContainText('Query cut');
  await expect(page.getByTestId('query-note')).toContainText('did not read the last');
  await expect(hits).toHaveCount(20);

  // Words outside the vocabulary are named; a query of nothing but such words ranks nothing.
  await page.getByLabel('Search query').fill('planes qwertyuiop');
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  await expect(page.getByTestId('query-note')).toContainText('"qwertyuiop"');
  await expect(hits).toHaveCount(20);
  await page.getByLabel('Search query').fill('qwertyuiop zxcvbnmzx');
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  await expect(page.getByTestId('query-note')).toContainText('does not know "qwertyuiop", "zxcvbnmzx"');
  await expect(hits).toHaveCount(0);
  await page.getByLabel('Search query').fill('many planes are parked in an airport');
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  await expect(hits).toHaveCount(20);
  await expect(page.getByTestId('query-note')).toHaveCount(0);

  // Clicking a hit shows that image's frame with the hit outlined; so does Enter on a focused hit.
  const map = page.getByTestId('map');
  const show = (i: number) => hits.nth(i).getByRole('button', { name: /^Show / });
  await show(0).click();
  await expect(map).toHaveAttribute('data-highlight-image', (await hits.first().getAttribute('data-image-id'))!);
  // Each picture has its own frame: of the 20 outlined hits, the one shown is in this view.
  await expect(page.getByTestId('hit-outlines')).toHaveAttribute('data-count', '1');
  await expect(map).toHaveAttribute('data-hit-outlines', '1');
  await expect(map).toHaveAttribute('data-highlight-window', (await hits.first().getAttribute('data-window'))!);
  await show(1).focus();
  await page.keyboard.press('Enter');
  await expect(map).toHaveAttribute('data-highlight-image', (await hits.nth(1).getAttribute('data-image-id'))!);

  // "Similar" ranks the index by likeness to a hit (image → image): never the image itself, and
  // mostly its own scene class. Each class is a third of the set, so chance would give ~1.7 of 5.
  for (const i of [0, 1]) {
    const source = (await hits.nth(i).getAttribute('data-file'))!;
    await hits.nth(i).getByRole('button', { name: /^Find images like / }).click();
    await expect(page.getByTestId('query-note')).toContainText(`Most like ${source}`);
    await expect(hits).toHaveCount(20);
    const files = await hits.evaluateAll((els) => els.map((e) => e.getAttribute('data-file')!));
    expect(files).not.toContain(source);
    const sameClass = files.slice(0, 5).filter((f) => labelOf.get(f) === labelOf.get(source)).length;
    expect(sameClass, `like ${source}: ${files.slice(0, 5).join(', ')}`).toBeGreaterThanOrEqual(4);
    await expect(page.getByTestId('search-timings')).not.toContainText('text');
  }
  // A region picked on the map (the Ask box's square) is an example too. A region covering a whole
  // picture is embedded on its own, yet must rank exactly as "Similar" on that picture does.
  await show(0).click();
  const picture = (await hits.first().getAttribute('data-file'))!;
  await hits.first().getByRole('button', { name: /^Find images like / }).click();
  await expect(page.getByTestId('query-note')).toContainText(`Most like ${picture}`);
  const rankingOf = () => hits.evaluateAll((els) => els.map((e) => [e.getAttribute('data-file')!, Number(e.getAttribute('data-score'))] as const));
  const bySimilar = await rankingOf();
  await openAskAtCentre(page); // the picture's frame, centred on it
  await page.getByLabel('Region size').selectOption('256');
  await expect(page.getByTestId('ask-box')).toHaveAttribute('data-window', '0,0,224,224');
  await page.getByTestId('find-like-region').click();
  await expect(page.getByTestId('query-note')).toContainText(`Most like the 224×224 px region of ${picture} at pixel 0,0`);
  await expect(page.getByTestId('search-timings')).toContainText('region');
  const byRegion = await rankingOf();
  expect(byRegion.map((h) => h[0])).toEqual(bySimilar.map((h) => h[0]));
  byRegion.forEach((h, i) => expect(h[1]).toBeCloseTo(bySimilar[i][1], 3));

  // A text query again leaves the image → image mode.
  await page.getByLabel('Search query').fill('many planes are parked in an airport');
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  await expect(page.getByTestId('search-timings')).toContainText('text');
  await expect(page.getByTestId('query-note')).toHaveCount(0);
  const beforeReload = await rankingOf();

  // Reload the page and the same files: vectors (and their hubness penalties) come back from
  // IndexedDB, nothing re-embedded, and the same query ranks with the same scores.
  await page.reload();
  const restored = await loadAndIndex(page);
  await expect(restored).toHaveAttribute('data-restored', '60');
  await expect(restored).toHaveAttribute('data-embedded', '0');
  await page.getByLabel('Search query').fill('many planes are parked in an airport');
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  await expect(hits).toHaveCount(20);
  const afterReload = await rankingOf();
  expect(afterReload.map((h) => h[0])).toEqual(beforeReload.map((h) => h[0]));
  afterReload.forEach((h, i) => expect(h[1]).toBeCloseTo(beforeReload[i][1], 5));

  // An image dropped after indexing is announced as not searchable yet; indexing again embeds only it.
  const extra = valImagesOf(['River'], 1)[0];
  await page.getByRole('tab', { name: 'layers' }).click();
  await dropFiles(page, [fileFromDisk(extra.path)]);
  await expect(page.getByTestId('layer-row')).toHaveCount(61, { timeout: 60_000 });
  await page.getByRole('tab', { name: 'search' }).click();
  await expect(page.getByTestId('index-missing')).toHaveAttribute('data-count', '1');
  await page.getByRole('button', { name: /^Index 61 images/ }).click();
  await expect(page.getByTestId('index-status')).toHaveAttribute('data-status', 'ready', { timeout: 180_000 });
  await expect(restored).toHaveAttribute('data-restored', '60');
  await expect(restored).toHaveAttribute('data-embedded', '1');
  await expect(page.getByTestId('index-missing')).toHaveCount(0);
  expect(errors).toEqual([]);
});

test('empty and very long queries are handled', async ({ page }) => {
  await page.goto('/');
  await page.getByRole('tab', { name: 'search' }).click();
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  await expect(page.getByTestId('query-note')).toContainText('Type what to look for');
  await page.getByLabel('Search query').fill('river '.repeat(1700));
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  await expect(page.getByTestId('query-note')).toContainText('Index the loaded images first');
  await page.getByRole('button', { name: /^Index 0 images/ }).click();
  await expect(page.getByTestId('index-status')).toContainText('Load some images first');
});

test('a GeoTIFF is indexed as overlapping tiles; hits outline their tile; "Similar" skips overlapping tiles', async ({ page }) => {
  test.setTimeout(300_000);
  const errors = trackPageErrors(page);
  await page.goto('/?backend=wasm');
  await dropFiles(page, [fileFromDisk(sharedFile('data/geotiff/naip_2020_cog.tif'))]);
  await expect(page.getByTestId('layer-row')).toHaveCount(1, { timeout: 60_000 });
  await page.getByRole('tab', { name: 'search' }).click();
  await page.getByLabel('Tile px').fill('256');
  await page.getByLabel('Overlap px').fill('32');
  await page.getByRole('button', { name: /^Index 1 image/ }).click();
  await expect(page.getByTestId('index-status')).toHaveAttribute('data-status', 'ready', { timeout: 240_000 });
  const tiles = planTiles(934, 723, { tileSize: 256, overlap: 32 }).tiles;
  await expect(page.getByTestId('index-progress')).toHaveAttribute('data-total', String(tiles.length));
  await expect(page.getByTestId('index-status')).toContainText(`${tiles.length} items`);

  await page.getByLabel('Search query').fill('many green farmlands');
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  const hits = page.getByTestId('search-hit');
  await expect(hits).toHaveCount(Math.min(20, tiles.length));
  const windowKeys = new Set(tiles.map((t) => `${t.window.x},${t.window.y},${t.window.width},${t.window.height}`));
  const keys = await hits.evaluateAll((els) => els.map((e) => e.getAttribute('data-window')!));
  for (const key of keys) expect(windowKeys, key).toContain(key);
  // Every hit is outlined on the map (one frame: the GeoTIFF's place); the toggle removes them.
  const outlines = page.getByTestId('hit-outlines');
  await expect(outlines).toHaveAttribute('data-count', String(keys.length));
  await expect(page.getByTestId('map')).toHaveAttribute('data-hit-outlines', String(keys.length));
  await outlines.getByRole('checkbox').uncheck();
  await expect(outlines).toHaveAttribute('data-count', '0');
  await expect(page.getByTestId('map')).toHaveAttribute('data-hit-outlines', '0');
  await outlines.getByRole('checkbox').check();
  await expect(outlines).toHaveAttribute('data-count', String(keys.length));
  await expect(hits.first().getByRole('button', { name: /^Show naip_2020_cog\.tif tile \d+,\d+ / })).toBeVisible();
  await hits.first().getByRole('button', { name: /^Show / }).click();
  await expect(page.getByTestId('map')).toHaveAttribute('data-highlight-window', keys[0]);

  // CSV export: one row per hit in rank order, with the tile's pixel bounds, its lon/lat box and the score.
  const [csvDownload] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export CSV' }).click()]);
  const [header, ...lines] = readFileSync(await csvDownload.path(), 'utf8').trim().split('\n');
  expect(header).toBe('file,x,y,width,height,min_lon,min_lat,max_lon,max_lat,score');
  const rows = lines.map((l) => l.split(','));
  expect(rows.map((r) => r.slice(1, 5).join(','))).toEqual(keys);
  const scores = await hits.evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-score'))));
  rows.forEach((r, i) => {
    expect(r[0]).toBe('naip_2020_cog.tif');
    const [minLon, minLat, maxLon, maxLat] = r.slice(5, 9).map(Number);
    // The NAIP scene (UTM 14N) lies at about 99.1° W, 47.0° N
    expect(minLon).toBeGreaterThan(-99.3);
    expect(maxLon).toBeLessThan(-99.0);
    expect(minLat).toBeGreaterThan(46.9);
    expect(maxLat).toBeLessThan(47.1);
    expect(minLon).toBeLessThan(maxLon);
    expect(minLat).toBeLessThan(maxLat);
    expect(Number(r[9])).toBeCloseTo(scores[i], 3);
  });

  await hits.first().getByRole('button', { name: /^Find images like / }).click();
  await expect(page.getByTestId('query-note')).toContainText('Most like naip_2020_cog.tif tile');
  const parse = (key: string) => {
    const [x, y, width, height] = key.split(',').map(Number);
    return { x, y, width, height };
  };
  const source = parse(keys[0]);
  const similar = await hits.evaluateAll((els) => els.map((e) => e.getAttribute('data-window')!));
  const overlapping = tiles.filter((t) => windowsOverlap(t.window, source)).length;
  expect(similar).toHaveLength(Math.min(20, tiles.length - overlapping));
  for (const key of similar) expect(windowsOverlap(parse(key), source), key).toBe(false);
  // JSON export of a "Similar" query names its source tile instead of a text.
  const [jsonDownload] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export JSON' }).click()]);
  const exported = JSON.parse(readFileSync(await jsonDownload.path(), 'utf8')) as { query: { similarTo: Record<string, unknown> }; results: { x: number; y: number; width: number; height: number }[] };
  expect(exported.query.similarTo).toMatchObject({ file: 'naip_2020_cog.tif', ...source });
  expect(exported.query.similarTo).not.toHaveProperty('score');
  expect(exported.results.map((r) => `${r.x},${r.y},${r.width},${r.height}`)).toEqual(similar);

  // A 512 px region picked on the map (it spans several tiles): none of the tiles it overlaps come back.
  await openAskAtCentre(page); // the tile of the first text hit, centred by "Show"
  await page.getByLabel('Region size').selectOption('512');
  const region = parse((await page.getByTestId('ask-box').getAttribute('data-window'))!);
  expect(region.width).toBe(512);
  await page.getByTestId('find-like-region').click();
  await expect(page.getByTestId('query-note')).toContainText(`Most like the 512×512 px region of naip_2020_cog.tif at pixel ${region.x},${region.y}`);
  const likeRegion = await hits.evaluateAll((els) => els.map((e) => e.getAttribute('data-window')!));
  const covered = tiles.filter((t) => windowsOverlap(t.window, region)).length;
  expect(covered).toBeGreaterThan(1);
  expect(likeRegion).toHaveLength(Math.min(20, tiles.length - covered));
  for (const key of likeRegion) expect(windowsOverlap(parse(key), region), key).toBe(false);
  // The example can be shown again after browsing the hits.
  await hits.first().getByRole('button', { name: /^Show / }).click();
  await expect(page.getByTestId('map')).toHaveAttribute('data-highlight-window', likeRegion[0]);
  await page.getByTestId('show-example').click();
  await expect(page.getByTestId('map')).toHaveAttribute('data-highlight-window', `${region.x},${region.y},${region.width},${region.height}`);
  expect(errors).toEqual([]);
});

test('WebGPU backend (SwiftShader): the two towers and the hubness model rank like WASM', async ({ browser }) => {
  test.setTimeout(480_000);
  const pair = valImagesOf(['Airport', 'Beach'], 1);
  /** Indexes the pair and runs one query on a backend, in its own context (own IndexedDB: nothing restored). */
  const scoresOn = async (backend: 'wasm' | 'webgpu') => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const errors = trackPageErrors(page);
    await page.goto(`/?backend=${backend}`);
    await page.getByRole('tab', { name: 'caption' }).click();
    await page.getByLabel('Caption images when they are loaded').uncheck();
    await page.getByRole('tab', { name: 'layers' }).click();
    await dropFiles(page, pair.map((s) => fileFromDisk(s.path)));
    await expect(page.getByTestId('layer-row')).toHaveCount(2, { timeout: 60_000 });
    await page.getByRole('tab', { name: 'search' }).click();
    await page.getByRole('button', { name: /^Index 2 images/ }).click();
    await expect(page.getByTestId('index-status')).toHaveAttribute('data-status', 'ready', { timeout: 360_000 });
    await expect(page.getByTestId('index-progress')).toHaveAttribute('data-embedded', '2');
    await page.getByLabel('Search query').fill('many planes are parked in an airport');
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    const hits = page.getByTestId('search-hit');
    await expect(hits).toHaveCount(2, { timeout: 120_000 });
    const ranked = await hits.evaluateAll((els) => els.map((e) => [e.getAttribute('data-file')!, Number(e.getAttribute('data-score'))] as const));
    await page.getByRole('tab', { name: 'models' }).click();
    for (const id of ['retrieval-image', 'retrieval-text', 'retrieval-hubness']) {
      await expect(page.getByTestId(`model-${id}`).getByTestId('backend-badge')).toHaveAttribute('data-backend', backend);
    }
    expect(errors).toEqual([]);
    await context.close();
    return ranked;
  };
  const wasm = await scoresOn('wasm');
  const webgpu = await scoresOn('webgpu');
  console.log(`[search] wasm ${JSON.stringify(wasm)} | webgpu ${JSON.stringify(webgpu)}`);
  expect(wasm[0][0]).toBe(pair[0].name); // the airport first
  expect(webgpu.map((h) => h[0])).toEqual(wasm.map((h) => h[0]));
  webgpu.forEach((h, i) => expect(h[1]).toBeCloseTo(wasm[i][1], 3));
});
