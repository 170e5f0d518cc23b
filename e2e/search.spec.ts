import { test, expect, type Page } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { dropFiles, fileFromDisk, sharedFile, trackPageErrors } from './helpers';

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

  // A 10,000-character query is cut, said so, and still answered.
  await page.getByLabel('Search query').fill('airport with planes '.repeat(500));
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  await expect(page.getByTestId('query-note')).toContainText('Query cut');
  await expect(hits).toHaveCount(20);

  // Clicking a hit shows that image's frame with the hit outlined; so does Enter on a focused hit.
  const map = page.getByTestId('map');
  await hits.first().click();
  await expect(map).toHaveAttribute('data-highlight-image', (await hits.first().getAttribute('data-image-id'))!);
  await expect(map).toHaveAttribute('data-highlight-window', (await hits.first().getAttribute('data-window'))!);
  await hits.nth(1).focus();
  await page.keyboard.press('Enter');
  await expect(map).toHaveAttribute('data-highlight-image', (await hits.nth(1).getAttribute('data-image-id'))!);

  // Reload the page and the same files: vectors come back from IndexedDB, nothing re-embedded.
  await page.reload();
  const restored = await loadAndIndex(page);
  await expect(restored).toHaveAttribute('data-restored', '60');
  await expect(restored).toHaveAttribute('data-embedded', '0');

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
