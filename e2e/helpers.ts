import { expect, type Page } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';

/** Root of the shared data (`../shared` beside the repo unless RSLENS_SHARED says otherwise). */
export const sharedDir = process.env.RSLENS_SHARED ?? join(process.cwd(), '..', 'shared');

export function sharedFile(relative: string): string {
  return join(sharedDir, relative);
}

export interface DropFile {
  name: string;
  bytes: Buffer | Uint8Array;
  type?: string;
}

export function fileFromDisk(path: string, name = basename(path)): DropFile {
  return { name, bytes: readFileSync(path) };
}

/** Drops files on the page the way a browser does: a real `drop` DragEvent with a DataTransfer. */
export async function dropFiles(page: Page, files: DropFile[]): Promise<void> {
  const payload = files.map((f) => ({ name: f.name, type: f.type ?? '', b64: Buffer.from(f.bytes).toString('base64') }));
  await page.locator('html[data-drop-ready]').waitFor({ state: 'attached' }); // before it, a drop would be lost
  await page.evaluate((items) => {
    const transfer = new DataTransfer();
    for (const item of items) {
      const bytes = Uint8Array.from(atob(item.b64), (c) => c.charCodeAt(0));
      transfer.items.add(new File([bytes], item.name, { type: item.type }));
    }
    const target = document.querySelector('[data-testid="map"]') ?? document.body;
    target.dispatchEvent(new DragEvent('dragenter', { dataTransfer: transfer, bubbles: true }));
    target.dispatchEvent(new DragEvent('dragover', { dataTransfer: transfer, bubbles: true, cancelable: true }));
    target.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
  }, payload);
}

/** Collects uncaught page errors so a test can assert the page never crashed. */
export function trackPageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  return errors;
}

/** Clicks the centre of the map (where a focused hit or picture sits) and waits for the Ask box. */
export async function openAskAtCentre(page: Page): Promise<void> {
  const box = (await page.getByTestId('map').boundingBox())!;
  await page.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
  await expect(page.getByTestId('ask-box')).toBeVisible();
}
