/**
 * `eval caption` and `eval vqa`: the exported caption/VQA graphs on onnxruntime-node, run
 * through the same core pipeline as the app (pixels → grid → router → query → experts).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { scoreCaptions } from '../../core/caption/metrics';
import { checkInstruction, runInstruction } from '../../core/caption/pipeline';
import { accuracyTable, normaliseAnswer, parseRsivqaLine, questionType } from '../../core/caption/vqa';
import type { TensorData } from '../../core/models/tensor';
import type { PixelWindow } from '../../core/raster/types';
import { gridOfWindow } from '../../core/caption/pipeline';
import { loadCaptionModels, type NodeCaptionModels } from '../captionNode';
import { readImageFile } from '../io/readImageFile';
import { sharedDir } from '../paths';
import { EXIT_OK, EXIT_USAGE, type Command } from '../registry';
import { printReport } from '../report';
import { parseFlags } from '../flags';

/** Published RSICD captioning results (BLEU-4 / CIDEr on the TEST split; ours are on the file given). */
const PUBLISHED = [
  { method: 'SAA', bleu4: 0.281, cider: 1.32 },
  { method: 'RSGPT', bleu4: 0.368, cider: 1.03 },
  { method: 'Mask-CE', bleu4: 0.541, cider: 2.98 },
];

function readJsonl<T>(file: string): T[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as T);
}

function progress(label: string, total: number) {
  const t0 = performance.now();
  return (done: number) => {
    if (done % 100 === 0 || done === total) process.stderr.write(`${label}: ${done}/${total} (${(done / ((performance.now() - t0) / 1000)).toFixed(1)}/s)\n`);
  };
}

export const evalCaption: Command = {
  name: 'eval caption',
  usage: 'eval caption --jsonl PATH [--beams N] [--limit N] [--out PREDICTIONS.jsonl] [--sequential]',
  summary: 'caption metrics (BLEU-1..4, METEOR exact-only, ROUGE-L, CIDEr-D) on a jsonl of {image, captions}',
  async run(args) {
    const flags = parseFlags(args, ['jsonl', 'limit', 'out', 'beams'], ['sequential']);
    const beams = Number(flags.beams ?? 1);
    if (!Number.isInteger(beams) || beams < 1 || beams > 8) {
      process.stderr.write('eval caption: --beams must be an integer from 1 to 8\n');
      return EXIT_USAGE;
    }
    if (!flags.jsonl) {
      process.stderr.write('eval caption: --jsonl PATH is required (lines {"image": "images/x.jpg", "captions": [...]}, images relative to the file)\n');
      return EXIT_USAGE;
    }
    const jsonl = path.resolve(flags.jsonl);
    let records = readJsonl<{ image: string; captions: string[] }>(jsonl);
    if (flags.limit) records = records.slice(0, Number(flags.limit));
    const models = await loadCaptionModels();
    const instruction = checkInstruction(models.tokenizer, models.config.caption_instruction);
    const tick = progress('captions', records.length);
    const pairs: { id: string; hypothesis: string; references: string[] }[] = [];
    let encodeMs = 0;
    let decodeMs = 0;
    let tokens = 0;
    let firstTokenMs = 0;
    const t0 = performance.now();
    for (const [i, r] of records.entries()) {
      const e0 = performance.now();
      const grid = await models.gridOfFile(path.join(path.dirname(jsonl), r.image));
      encodeMs += performance.now() - e0;
      const result = await runInstruction(models.config, models.tokenizer, models, grid, instruction, { task: 'caption', sequential: flags.sequential, beams });
      decodeMs += result.timings.decodeMs;
      firstTokenMs += result.timings.firstTokenMs;
      tokens += result.tokens.length;
      pairs.push({ id: r.image, hypothesis: result.text, references: r.captions });
      tick(i + 1);
    }
    const seconds = (performance.now() - t0) / 1000;
    const s = scoreCaptions(pairs);
    if (flags.out) writeFileSync(flags.out, pairs.map((p) => JSON.stringify({ image: p.id, caption: p.hypothesis })).join('\n') + '\n');
    const distinct = new Set(pairs.map((p) => p.hypothesis)).size;
    const decoding = beams > 1 ? `beam ${beams}` : 'greedy';
    const ours = `RS Lens ${models.config.name} (${decoding}, this run: ${path.basename(jsonl)})`;
    const empty = { bleu1: null, bleu2: null, bleu3: null, meteor: null, rougeL: null };
    printReport({
      title: `Captioning on ${records.length} images (${pairs[0]?.references.length ?? 0} references each). Published rows are on the RSICD TEST split; ours on the file given. METEOR here is exact-match only (not the Java METEOR 1.5; not comparable to papers).`,
      columns: [
        { key: 'method' },
        { key: 'bleu1', label: 'BLEU-1', digits: 3 },
        { key: 'bleu2', label: 'BLEU-2', digits: 3 },
        { key: 'bleu3', label: 'BLEU-3', digits: 3 },
        { key: 'bleu4', label: 'BLEU-4', digits: 3 },
        { key: 'meteor', label: 'METEOR*', digits: 3 },
        { key: 'rougeL', label: 'ROUGE-L', digits: 3 },
        { key: 'cider', label: 'CIDEr-D', digits: 3 },
      ],
      rows: [
        { method: ours, bleu1: s.bleu[0], bleu2: s.bleu[1], bleu3: s.bleu[2], bleu4: s.bleu[3], meteor: s.meteorExact, rougeL: s.rougeL, cider: s.ciderD },
        ...PUBLISHED.map((p) => ({ method: `${p.method} (published, test split)`, ...empty, bleu4: p.bleu4, cider: p.cider })),
      ],
      metrics: {
        images: records.length,
        model: models.config.name,
        decoding: `${decoding}, fused experts`,
        bleu: s.bleu,
        meteorExactOnly: s.meteorExact,
        rougeL: s.rougeL,
        ciderD: s.ciderD,
        distinctCaptions: distinct,
        msPerImage: (seconds * 1000) / records.length,
        encodeMsPerImage: encodeMs / records.length,
        firstTokenMs: firstTokenMs / records.length,
        tokensPerSecond: tokens / (decodeMs / 1000),
        experts: flags.sequential ? 'sequential' : 'parallel (Promise.all)',
      },
    });
    return EXIT_OK;
  },
};

interface VqaItem {
  /** Key of the pixels: file + window. */
  imageKey: string;
  file: string;
  window: PixelWindow | null;
  question: string;
  answer: string;
  group: string;
}

const IMAGE_EXTS = ['', '.jpg', '.png', '.tif', '.tiff', '.jpeg'];

function resolveImage(dir: string, name: string): string | null {
  for (const ext of IMAGE_EXTS) {
    const p = path.join(dir, name + ext);
    if (existsSync(p)) return p;
  }
  return null;
}

/** RSIVQA lines; with a split jsonl, only its images (held out from training). */
function rsivqaItems(file: string, imagesDir: string, splitJsonl?: string): { items: VqaItem[]; skipped: number } {
  const allowed = splitJsonl ? new Set(readJsonl<{ image: string }>(splitJsonl).map((r) => path.basename(r.image))) : null;
  const items: VqaItem[] = [];
  let skipped = 0;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const parsed = parseRsivqaLine(line);
    if (!parsed) {
      skipped++;
      continue;
    }
    if (allowed && !allowed.has(parsed.image)) continue;
    const image = resolveImage(imagesDir, parsed.image);
    if (!image) {
      skipped++;
      continue;
    }
    items.push({ imageKey: image, file: image, window: null, question: parsed.question, answer: parsed.answer, group: questionType(parsed.question) });
  }
  return { items, skipped };
}

/** Generated questions (models/caption/vqa/generated_*.jsonl): RSICD images or box-dataset tiles. */
function generatedItems(file: string): VqaItem[] {
  const rsicd = path.join(sharedDir, 'data', 'rsicd');
  return readJsonl<{ image: string; type: string; question: string; answer: string; source: string }>(file).map((r) => {
    const tile = /^(aerial-cars|dota):(.+)#(\d+),(\d+),(\d+)$/.exec(r.image);
    const group = `${r.type} [${r.source.replace(/^generated:/, '')}]`;
    if (!tile) return { imageKey: r.image, file: path.join(rsicd, r.image), window: null, question: r.question, answer: r.answer, group };
    const [, dataset, name, x, y, side] = tile;
    const file = path.join(sharedDir, 'data', dataset, 'images', name);
    return { imageKey: r.image, file, window: { x: Number(x), y: Number(y), width: Number(side), height: Number(side) }, question: r.question, answer: r.answer, group };
  });
}

async function answerAll(models: NodeCaptionModels, items: VqaItem[], label: string) {
  const grids = new Map<string, TensorData>();
  const tick = progress(label, items.length);
  const results: { key: string; correct: boolean; routedToType: number; expert: number; task: string }[] = [];
  const examples: { question: string; answer: string; predicted: string }[] = [];
  // Group by pixels so each grid is computed once.
  const sorted = [...items].sort((a, b) => a.imageKey.localeCompare(b.imageKey));
  for (const [i, item] of sorted.entries()) {
    let grid = grids.get(item.imageKey);
    if (!grid) {
      grids.clear();
      const source = await readImageFile(item.file);
      const window = item.window ?? { x: 0, y: 0, width: source.info.width, height: source.info.height };
      grid = await gridOfWindow(models.imageEncoder, source, window, models.runImage);
      grids.set(item.imageKey, grid);
    }
    const check = checkInstruction(models.tokenizer, item.question);
    const result = await runInstruction(models.config, models.tokenizer, models, grid, check, { task: 'question' });
    const correct = normaliseAnswer(result.text) === normaliseAnswer(item.answer);
    const type = item.group.split(' ')[0];
    const intended = models.config.question_types_to_expert[type];
    results.push({ key: item.group, correct, routedToType: intended === undefined ? -1 : Number(result.route.experts[0] === intended), expert: result.route.experts[0], task: result.route.task });
    if (examples.length < 8 && i % 97 === 0) examples.push({ question: item.question, answer: item.answer, predicted: result.text });
    tick(i + 1);
  }
  return { results, examples };
}

export const evalVqa: Command = {
  name: 'eval vqa',
  usage: 'eval vqa (--rsivqa FILE --images DIR [--split VAL.jsonl]) | (--generated FILE) [--limit N]',
  summary: 'VQA accuracy per question type: RSIVQA "name:question?answer" lines and/or the generated held-out set',
  async run(args) {
    const flags = parseFlags(args, ['rsivqa', 'images', 'split', 'generated', 'limit']);
    if (!flags.generated && !(flags.rsivqa && flags.images)) {
      process.stderr.write('eval vqa: give --rsivqa FILE --images DIR (optionally --split VAL.jsonl to keep only held-out images) and/or --generated FILE\n');
      return EXIT_USAGE;
    }
    const models = await loadCaptionModels();
    const limit = flags.limit ? Number(flags.limit) : Infinity;
    const rows: Record<string, string | number | null>[] = [];
    const metrics: Record<string, unknown> = { model: models.config.name };
    if (flags.rsivqa && flags.images) {
      const { items, skipped } = rsivqaItems(path.resolve(flags.rsivqa), path.resolve(flags.images), flags.split && path.resolve(flags.split));
      const { results, examples } = await answerAll(models, items.slice(0, limit), 'rsivqa');
      const table = accuracyTable(results);
      for (const r of table) rows.push({ set: `RSIVQA ${path.basename(flags.rsivqa)}${flags.split ? ` (images of ${path.basename(flags.split)})` : ' (all images: may include training images)'}`, type: r.key, n: r.n, accuracy: r.accuracy });
      metrics.rsivqa = { file: path.basename(flags.rsivqa), heldOutOnly: Boolean(flags.split), skippedLines: skipped, perType: Object.fromEntries(table.map((r) => [r.key, { n: r.n, accuracy: r.accuracy }])), examples };
    }
    if (flags.generated) {
      const items = generatedItems(path.resolve(flags.generated));
      const { results, examples } = await answerAll(models, items.slice(0, limit), 'generated');
      const table = accuracyTable(results);
      for (const r of table) rows.push({ set: `generated ${path.basename(flags.generated)} (GENERATED questions)`, type: r.key, n: r.n, accuracy: r.accuracy });
      const routing = accuracyTable(results.filter((r) => r.routedToType >= 0).map((r) => ({ key: r.key, correct: r.routedToType === 1 })));
      metrics.generated = {
        file: path.basename(flags.generated),
        perType: Object.fromEntries(table.map((r) => [r.key, { n: r.n, accuracy: r.accuracy }])),
        routedToIntendedExpert: Object.fromEntries(routing.map((r) => [r.key, r.accuracy])),
        examples,
      };
    }
    printReport({
      title: 'VQA exact-match accuracy (answers normalised: lower case, "?"/"." removed). Greedy, routed expert only.',
      columns: [{ key: 'set' }, { key: 'type' }, { key: 'n' }, { key: 'accuracy', digits: 3 }],
      rows,
      metrics,
    });
    return EXIT_OK;
  },
};
