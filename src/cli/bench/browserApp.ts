/**
 * Runs the built app in Debian's Chromium for browser benchmarks: `vite preview` of dist/
 * (build first: `npm run build`) and playwright-core, with the same flags as the e2e tests.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { preview } from 'vite';
import { repoRoot } from '../paths';

export interface BrowserApp {
  page: Page;
  dropFiles(paths: string[]): Promise<void>;
}

const CHROMIUM_ARGS = ['--headless=new', '--no-sandbox', '--disable-gpu', '--enable-unsafe-webgpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic', '--disable-dev-shm-usage'];

export async function withBrowserApp<T>(urlPath: string, body: (app: BrowserApp) => Promise<T>): Promise<T> {
  if (!existsSync(path.join(repoRoot, 'dist/index.html'))) throw new Error('browser benchmarks need a build: run `npm run build` first');
  const server = await preview({ root: repoRoot, logLevel: 'error', preview: { host: '127.0.0.1', port: 0 } });
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: CHROMIUM_ARGS });
  try {
    const page = await browser.newPage();
    const base = server.resolvedUrls?.local[0] ?? 'http://127.0.0.1:4173/';
    await page.goto(new URL(urlPath, base).href);
    const dropFiles = async (paths: string[]) => {
      const payload = paths.map((p) => ({ name: path.basename(p), b64: readFileSync(p).toString('base64') }));
      await page.locator('html[data-drop-ready]').waitFor({ state: 'attached' }); // before it, a drop would be lost
      await page.evaluate((items) => {
        const transfer = new DataTransfer();
        for (const item of items) transfer.items.add(new File([Uint8Array.from(atob(item.b64), (c) => c.charCodeAt(0))], item.name));
        document.body.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
      }, payload);
      await page.locator('[data-testid="layer-row"]').nth(paths.length - 1).waitFor({ timeout: 120_000 });
    };
    return await body({ page, dropFiles });
  } finally {
    await browser.close();
    await server.close();
  }
}
