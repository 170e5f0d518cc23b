import { test, expect } from '@playwright/test';

test('app shell loads, cross-origin isolated', async ({ page }) => {
  await page.goto('/');
  await expect(page.getByTestId('map')).toBeVisible();
  expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
});
