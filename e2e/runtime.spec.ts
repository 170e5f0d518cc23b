/**
 * Model runtime in real Chromium: the tiny ONNX model goes through the manifest,
 * the loader (download → sha256 → Cache Storage) and a comlink worker running
 * onnxruntime-web, on WASM and on WebGPU (SwiftShader in headless Chromium),
 * driven through the Models panel on /runtime.html.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test, expect, type Page, type Request } from '@playwright/test';

const MODEL_ID = 'tiny-cnn';
const ONNX_URL = '**/models/tiny/tiny-cnn.onnx';
const reference = JSON.parse(readFileSync(path.resolve('models/tiny/tiny-cnn.reference.json'), 'utf8')) as {
  outputs: { probs: { data: number[] } };
};

const row = (page: Page) => page.getByTestId(`model-${MODEL_ID}`);

async function testRun(page: Page, timeout = 30_000) {
  await row(page).getByRole('button', { name: 'Test run' }).click();
  await expect(row(page)).toHaveAttribute('data-status', /ready|error/, { timeout });
}

async function selfTestOutputs(page: Page): Promise<number[]> {
  const json = await row(page).getByTestId('self-test').getAttribute('data-outputs');
  return (JSON.parse(json!) as { probs: number[] }).probs;
}

function maxAbsDiff(a: number[], b: number[]): number {
  expect(a).toHaveLength(b.length);
  return Math.max(...a.map((v, i) => Math.abs(v - b[i])));
}

const isOnnxRequest = (r: Request) => r.url().endsWith('/models/tiny/tiny-cnn.onnx');
// The two onnxruntime-web builds (src/runtime/ort.ts): plain for WASM, asyncify for WebGPU.
const ortWasmBuild = (url: string) => (/ort-wasm-simd-threaded\.asyncify[^/]*\.wasm$/.test(url) ? 'asyncify' : /ort-wasm-simd-threaded[^/.]*\.wasm$/.test(url) ? 'plain' : null);

test('WASM via ?backend.tiny-cnn=wasm: matches PyTorch, UI shows the backend, no console errors', async ({ page }) => {
  const consoleErrors: string[] = [];
  page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
  const ortBuilds: string[] = [];
  page.on('request', (r) => { const b = ortWasmBuild(r.url()); if (b) ortBuilds.push(b); });
  await page.goto(`/runtime.html?backend.${MODEL_ID}=wasm`);
  await expect(row(page).getByLabel(`Backend for ${MODEL_ID}`)).toBeDisabled(); // the URL wins over the setting
  await testRun(page);

  await expect(row(page).getByTestId('self-test')).toHaveAttribute('data-pass', 'yes');
  await expect(row(page).getByTestId('self-test')).toHaveAttribute('data-backend', 'wasm');
  await expect(row(page).getByTestId('load-info').getByTestId('backend-badge')).toHaveAttribute('data-backend', 'wasm');
  await expect(page.getByTestId('models-status')).toContainText('WASM');
  expect(maxAbsDiff(await selfTestOutputs(page), reference.outputs.probs.data)).toBeLessThan(1e-4);
  expect(consoleErrors).toEqual([]);
  // A WASM session must run on the plain build: the asyncify one (needed for WebGPU) is ~5x slower on WASM.
  expect(ortBuilds).toEqual(['plain']);
});

test('WebGPU and WASM chosen in the panel agree with each other and with PyTorch', async ({ page }) => {
  test.setTimeout(180_000);
  const ortBuilds: string[] = [];
  page.on('request', (r) => { const b = ortWasmBuild(r.url()); if (b) ortBuilds.push(b); });
  await page.goto('/runtime.html');
  const select = row(page).getByLabel(`Backend for ${MODEL_ID}`);

  await select.selectOption('webgpu'); // webgpu alone: ORT must not fall back silently
  await testRun(page, 120_000);
  await expect(row(page).getByTestId('model-error')).toHaveCount(0);
  await expect(row(page).getByTestId('self-test')).toHaveAttribute('data-backend', 'webgpu');
  await expect(row(page).getByTestId('load-info').getByTestId('backend-badge')).toHaveText('WebGPU');
  const webgpu = await selfTestOutputs(page);
  const timings = async () => `${await row(page).getByTestId('load-info').innerText()} | ${await row(page).getByTestId('self-test').innerText()}`;
  console.log(`[runtime] webgpu: ${await timings()}`);

  await select.selectOption('wasm');
  await testRun(page);
  await expect(row(page).getByTestId('self-test')).toHaveAttribute('data-backend', 'wasm');
  const wasm = await selfTestOutputs(page);
  console.log(`[runtime] wasm: ${await timings()}`);

  expect(maxAbsDiff(webgpu, wasm)).toBeLessThan(1e-4);
  expect(maxAbsDiff(webgpu, reference.outputs.probs.data)).toBeLessThan(1e-4);
  expect(maxAbsDiff(wasm, reference.outputs.probs.data)).toBeLessThan(1e-4);
  expect(ortBuilds).toEqual(['asyncify', 'plain']); // each backend on its own onnxruntime-web build
});

test('after a reload the model comes from Cache Storage with no network request for the .onnx', async ({ page }) => {
  const onnxRequests: string[] = [];
  page.on('request', (r) => isOnnxRequest(r) && onnxRequests.push(r.url()));

  await page.goto('/runtime.html?backend=wasm');
  await expect(row(page).getByTestId('cache-status')).toHaveAttribute('data-cached', 'no');
  await testRun(page);
  await expect(row(page).getByTestId('load-info')).toContainText('downloaded');
  await expect(row(page).getByTestId('cache-status')).toHaveAttribute('data-cached', 'yes');
  expect(onnxRequests).toHaveLength(1);

  await page.reload();
  await expect(row(page).getByTestId('cache-status')).toHaveAttribute('data-cached', 'yes');
  await testRun(page);
  await expect(row(page).getByTestId('self-test')).toHaveAttribute('data-pass', 'yes');
  await expect(row(page).getByTestId('load-info')).toContainText('from cache');
  expect(onnxRequests).toHaveLength(1);

  // Delete empties the cache: the next load downloads again.
  await row(page).getByRole('button', { name: 'Delete' }).click();
  await expect(row(page).getByTestId('cache-status')).toHaveAttribute('data-cached', 'no');
  await testRun(page);
  expect(onnxRequests).toHaveLength(2);
});

test('a file whose sha256 does not match is refused, named, and not cached', async ({ page }) => {
  await page.route(ONNX_URL, async (route) => {
    const res = await route.fetch();
    const body = Buffer.from(await res.body());
    body[body.length - 5] ^= 0xff; // same size, different content
    await route.fulfill({ response: res, body });
  });
  await page.goto('/runtime.html?backend=wasm');
  await testRun(page);
  const error = row(page).getByTestId('model-error');
  await expect(error).toContainText('sha256');
  await expect(error).toContainText(`"${MODEL_ID}"`);
  await expect(error).toContainText('tiny/tiny-cnn.onnx');
  await expect(row(page).getByTestId('self-test')).toHaveCount(0);
  await expect(row(page).getByTestId('cache-status')).toHaveAttribute('data-cached', 'no');

  // The bad bytes were not kept: with the real file the next load works.
  await page.unroute(ONNX_URL);
  await testRun(page);
  await expect(row(page).getByTestId('self-test')).toHaveAttribute('data-pass', 'yes');
});

test('a missing model file gives a clear error, not a hang', async ({ page }) => {
  await page.route(ONNX_URL, (route) => route.fulfill({ status: 404, body: 'not found' }));
  await page.goto('/runtime.html?backend=wasm');
  const started = Date.now();
  await testRun(page);
  await expect(row(page).getByTestId('model-error')).toContainText('tiny/tiny-cnn.onnx is missing on the server (HTTP 404');
  expect(Date.now() - started).toBeLessThan(10_000);

  // A single-page-app fallback (index.html with status 200) is recognised too.
  await page.route(ONNX_URL, (route) => route.fulfill({ status: 200, contentType: 'text/html', body: '<!doctype html><html></html>' }));
  await testRun(page);
  await expect(row(page).getByTestId('model-error')).toContainText('got an HTML page instead of the file');
});

test('a server that never answers times out with a clear error', async ({ page }) => {
  await page.route(ONNX_URL, () => {}); // never fulfilled
  await page.goto('/runtime.html?backend=wasm&modelTimeoutMs=1500');
  await testRun(page);
  await expect(row(page).getByTestId('model-error')).toContainText('no response within 1.5 s');
});
