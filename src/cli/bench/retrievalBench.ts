/** Benchmarks of the search capability: indexing throughput (Node, Chromium) and ranking. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { normaliseRows, topK } from '../../core/retrieval/rank';
import { embedImageFiles, loadRetrieval } from '../commands/evalRetrieval';
import { sharedDir } from '../paths';
import { latencyStats, type Benchmark } from './stats';
import { withBrowserApp } from './browserApp';
import { readManifest } from '../manifestFiles';
import { findModel } from '../../core/models/manifest';
import { IMAGE_TOWER } from '../../core/retrieval/modelIds';
import { embedTexts, hubnessPenalties } from '../../core/retrieval/embed';

function valImages(count: number): string[] {
  const jsonl = path.join(sharedDir, 'data/rsicd/val.jsonl');
  return readFileSync(jsonl, 'utf8')
    .split('\n')
    .filter(Boolean)
    .slice(0, count)
    .map((l) => path.join(path.dirname(jsonl), (JSON.parse(l) as { image: string }).image));
}

export const rankBenchmark: Benchmark = {
  name: 'search-rank-10k',
  description: 'search: top-20 of 10,000 indexed vectors (the shipped embedding size) for one text query, hubness offsets included (the ranking after the text is embedded)',
  async run() {
    const dim = Number(findModel(readManifest(), IMAGE_TOWER).outputs[0].shape[1]);
    let seed = 1;
    const rand = () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 2 - 1;
    const vectors = normaliseRows(Float32Array.from({ length: 10_000 * dim }, rand), dim);
    const penalties = Float32Array.from({ length: 10_000 }, () => 0.1 + 0.05 * rand()); // a text query's hubness offsets, as in the app
    const samples: number[] = [];
    for (let i = 0; i < 60; i++) {
      const query = normaliseRows(Float32Array.from({ length: dim }, rand), dim);
      const t0 = performance.now();
      topK(vectors, dim, query, 20, undefined, penalties);
      if (i >= 10) samples.push(performance.now() - t0);
    }
    return latencyStats(this.name, `node (same code as the page), ${dim}-d`, samples);
  },
};

/** The other half of a query's latency: tokenising and embedding the typed text (before the ranking). */
export const queryNodeBenchmark: Benchmark = {
  name: 'search-query-node',
  description: 'search: embedding one typed query (tokenizer + text tower) on onnxruntime-node, short and 32-token queries',
  async run() {
    const { tokenizer, runText } = await loadRetrieval();
    const queries = ['storage tanks beside a river', 'many planes are parked in an airport',
      'a large number of white storage tanks are near a road with several green trees and some buildings beside a wide river'];
    for (const q of queries) await embedTexts(tokenizer, runText, [q]); // warm-up
    const samples: number[] = [];
    for (let i = 0; i < 20; i++) {
      for (const q of queries) {
        const t0 = performance.now();
        await embedTexts(tokenizer, runText, [q]);
        samples.push(performance.now() - t0);
      }
    }
    return latencyStats(this.name, 'onnxruntime-node cpu, 1 query', samples);
  },
};

export const indexNodeBenchmark: Benchmark = {
  name: 'search-index-node',
  description: 'search: indexing 48 RSICD val images (decode + resample + image tower + hubness penalty) on onnxruntime-node; the two stages are also timed apart',
  async run() {
    const { imageEntry, runImage, runHubness } = await loadRetrieval();
    const files = valImages(48);
    const embedMs: number[] = [];
    const penaltyMs: number[] = [];
    const index = async (batch: string[]) => {
      const t0 = performance.now();
      const { vectors, dim } = await embedImageFiles(imageEntry, runImage, batch);
      const t1 = performance.now();
      await hubnessPenalties(runHubness, vectors, dim);
      embedMs.push(t1 - t0);
      penaltyMs.push(performance.now() - t1);
    };
    await index(files.slice(0, 4)); // warm-up
    embedMs.length = penaltyMs.length = 0;
    for (const file of files) await index([file]);
    const runtime = 'onnxruntime-node cpu';
    const whole = latencyStats(this.name, runtime, embedMs.map((ms, i) => ms + penaltyMs[i]));
    // Timed in the same run, so the penalty's share is not lost in the run-to-run spread of this machine.
    return [
      { ...whole, perSecond: 1000 / whole.meanMs, unit: 'images/s' },
      latencyStats(`${this.name}-image-tower`, `${runtime} (decode + resample + tower)`, embedMs),
      latencyStats(`${this.name}-hubness`, `${runtime} (penalty of 1 vector)`, penaltyMs),
    ];
  },
};

/**
 * Indexing in the app. By default the app also captions every dropped image (the caption worker
 * shares the cores), so the two settings are measured apart: search alone, and the default.
 */
function indexChromium(name: string, autoCaption: boolean): Benchmark {
  return {
    name,
    description: `search: indexing 48 RSICD val images in the app (Chromium, WASM backend), images/s while indexing (model load excluded, reported beside it); auto-caption ${autoCaption ? 'on (the default: captioning runs beside indexing)' : 'off'}`,
    async run() {
      const files = valImages(48);
      return withBrowserApp('/?backend=wasm', async (app) => {
        if (!autoCaption) {
          await app.page.getByRole('tab', { name: 'caption' }).click();
          await app.page.getByLabel('Caption images when they are loaded').uncheck();
          await app.page.getByRole('tab', { name: 'layers' }).click(); // dropFiles waits for the layer rows
        }
        await app.dropFiles(files);
        await app.page.getByRole('tab', { name: 'search' }).click();
        const status = (s: string) => app.page.getByTestId('index-status').and(app.page.locator(`[data-status="${s}"]`));
        const start = performance.now();
        await app.page.getByRole('button', { name: /^Index \d+ images/ }).click();
        await status('indexing').waitFor({ state: 'attached', timeout: 300_000 });
        const indexingAt = performance.now();
        await status('ready').waitFor({ state: 'attached', timeout: 300_000 });
        const indexMs = performance.now() - indexingAt;
        const embedded = Number(await app.page.getByTestId('index-progress').getAttribute('data-embedded'));
        const perImage = indexMs / embedded;
        const loadS = ((indexingAt - start) / 1000).toFixed(1);
        const runtime = `chromium wasm, auto-caption ${autoCaption ? 'on' : 'off'} (model load ${loadS} s before)`;
        return { ...latencyStats(this.name, runtime, [perImage]), iterations: embedded, perSecond: 1000 / perImage, unit: 'images/s' };
      });
    },
  };
}

export const indexChromiumBenchmark = indexChromium('search-index-chromium', false);
export const indexChromiumWithCaptionsBenchmark = indexChromium('search-index-chromium-with-captions', true);
