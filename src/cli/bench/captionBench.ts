/**
 * Benchmarks of captioning (RS-MoE): image tower, time to first token, full caption, model time
 * per expert step, tokens/s, and the experts decoded in parallel vs one after another — in Node
 * (onnxruntime-node, Promise.all vs sequential) and in the app in Chromium (WASM; three expert
 * workers vs one).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { checkInstruction, runInstruction, type InstructionResult } from '../../core/caption/pipeline';
import type { TensorData } from '../../core/models/tensor';
import { loadCaptionModels } from '../captionNode';
import { sharedDir } from '../paths';
import { withBrowserApp } from './browserApp';
import { latencyStats, type BenchResult, type Benchmark } from './stats';

const IMAGE_COUNT = 10;

/** The first IMAGE_COUNT validation images (RSICD val; 224×224 each). */
function valImages(): string[] {
  return readFileSync(path.join(sharedDir, 'data/rsicd/val.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .slice(0, IMAGE_COUNT)
    .map((l) => path.join(sharedDir, 'data/rsicd', (JSON.parse(l) as { image: string }).image));
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(xs.length, 1);

function stageRows(prefix: string, runtime: string, results: (InstructionResult & { encodeMs: number })[], label: string): BenchResult[] {
  const tokens = results.reduce((n, r) => n + r.tokens.length, 0);
  const decodeMs = results.reduce((n, r) => n + r.timings.decodeMs, 0);
  const experts = results[0]?.timings.msPerExpertStep.length ?? 0;
  const perExpert = Array.from({ length: experts }, (_, e) => latencyStats(`${prefix}-expert${e}-step`, runtime, results.map((r) => r.timings.msPerExpertStep[e])));
  return [
    latencyStats(`${prefix}-encoder`, runtime, results.map((r) => r.encodeMs)),
    latencyStats(`${prefix}-first-token${label}`, runtime, results.map((r) => r.timings.firstTokenMs)),
    { ...latencyStats(`${prefix}-full-caption${label}`, runtime, results.map((r) => r.timings.decodeMs)), perSecond: (tokens * 1000) / decodeMs, unit: 'tokens/s' },
    ...perExpert,
  ];
}

export const captionNodeBenchmark: Benchmark = {
  name: 'caption-node',
  description: `caption: ${IMAGE_COUNT} RSICD val images on onnxruntime-node (CPU): image tower, first token, full caption (greedy, 3 experts fused), ms per expert step; experts parallel (Promise.all) vs sequential`,
  async run() {
    const m = await loadCaptionModels();
    const instruction = checkInstruction(m.tokenizer, m.config.caption_instruction);
    const grids: TensorData[] = [];
    const encodeMs: number[] = [];
    for (const file of valImages()) {
      const t0 = performance.now();
      grids.push(await m.gridOfFile(file));
      encodeMs.push(performance.now() - t0);
    }
    const pass = async (sequential: boolean) => {
      const out = [];
      for (const [i, grid] of grids.entries()) out.push({ ...(await runInstruction(m.config, m.tokenizer, m, grid, instruction, { task: 'caption', sequential })), encodeMs: encodeMs[i] });
      return out;
    };
    await pass(false); // warm-up
    const parallel = await pass(false);
    const sequential = await pass(true);
    const runtime = 'onnxruntime-node cpu';
    return [
      ...stageRows('caption-node', runtime, parallel, ' (parallel)'),
      ...stageRows('caption-node', runtime, sequential, ' (sequential)').filter((r) => r.benchmark.includes('sequential')),
    ];
  },
};

interface BrowserTiming {
  name: string;
  encodeMs: number;
  firstTokenMs: number;
  decodeMs: number;
  totalMs: number;
  tokens: number;
  expertStepMs: number[];
}

export const captionChromiumBenchmark: Benchmark = {
  name: 'caption-chromium',
  description: `caption: ${IMAGE_COUNT} RSICD val images in the app (Chromium, WASM): image tower, first token, full caption, ms per expert step; 3 expert workers vs 1 (model load and the first pass excluded)`,
  async run() {
    return withBrowserApp('/?backend=wasm', async ({ page, dropFiles }) => {
      const files = valImages();
      await dropFiles(files); // auto-caption on drop: the first pass loads the models and warms up
      await page.getByRole('tab', { name: 'caption' }).click();
      const items = page.locator('[data-testid="caption-item"]');
      const allDone = async () => {
        for (let i = 0; i < files.length; i++) await items.nth(i).and(page.locator('[data-status="done"]')).waitFor({ timeout: 600_000 });
      };
      const read = () =>
        items.evaluateAll((els) =>
          els.map((e) => ({
            name: e.getAttribute('data-image-name')!,
            encodeMs: Number(e.getAttribute('data-encode-ms')),
            firstTokenMs: Number(e.getAttribute('data-first-token-ms')),
            decodeMs: Number(e.getAttribute('data-decode-ms')),
            totalMs: Number(e.getAttribute('data-total-ms')),
            tokens: Number(e.getAttribute('data-tokens')),
            expertStepMs: e.getAttribute('data-expert-step-ms')!.split(',').map(Number),
          })),
        );
      await allDone();
      const encode = (await read()).map((t) => t.encodeMs);
      const again = async () => {
        for (const f of files) await page.getByRole('button', { name: `Caption ${path.basename(f)} again` }).click();
        await allDone();
        return read();
      };
      const parallel: BrowserTiming[] = await again();
      await page.getByLabel('Run the experts in parallel workers').uncheck();
      const sequential: BrowserTiming[] = await again();
      const runtime = 'chromium wasm';
      const rows = (timings: BrowserTiming[], label: string): BenchResult[] => {
        const tokens = timings.reduce((n, t) => n + t.tokens, 0);
        const decodeMs = timings.reduce((n, t) => n + t.decodeMs, 0);
        return [
          latencyStats(`caption-chromium-first-token${label}`, runtime, timings.map((t) => t.firstTokenMs)),
          { ...latencyStats(`caption-chromium-full-caption${label}`, runtime, timings.map((t) => t.decodeMs)), perSecond: (tokens * 1000) / decodeMs, unit: 'tokens/s' },
          ...[0, 1, 2].map((e) => latencyStats(`caption-chromium-expert${e}-step${label}`, runtime, timings.map((t) => t.expertStepMs[e] ?? 0))),
        ];
      };
      return [latencyStats('caption-chromium-encoder', runtime, encode), ...rows(parallel, ' (3 workers)'), ...rows(sequential, ' (1 worker)').filter((r) => !r.benchmark.includes('step') || mean(sequential.map((t) => t.expertStepMs[0])) > 0)];
    });
  },
};
