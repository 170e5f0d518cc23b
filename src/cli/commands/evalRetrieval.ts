/**
 * `eval retrieval`, `eval zeroshot` and `eval similar`: the exported retrieval towers on onnxruntime-node,
 * fed through the same core code the browser worker uses (pixels, tokenizer, embedding).
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { findModel, type ModelEntry } from '../../core/models/manifest';
import { embedTexts, embedWindows, hubnessPenalties, type RunModel } from '../../core/retrieval/embed';
import { HUBNESS, IMAGE_TOWER, TEXT_TOWER } from '../../core/retrieval/modelIds';
import { topK } from '../../core/retrieval/rank';
import { classPrecisionAtK, recallAtK } from '../../core/retrieval/recall';
import { RetrievalTokenizer, type CompactVocab } from '../../core/text/tokenizer';
import { readImageFile } from '../io/readImageFile';
import { readManifest } from '../manifestFiles';
import { createNodeSession, runNodeSession } from '../ortNode';
import { modelsDir } from '../paths';
import { EXIT_OK, EXIT_USAGE, type Command } from '../registry';
import { printReport } from '../report';
import { parseFlags } from '../flags';

/** Published RSICD results (mR, test split; ours are on the validation split). */
const PUBLISHED = [
  { method: 'GaLR', mR: 18.96 },
  { method: 'PIR', mR: 24.46 },
  { method: 'RemoteCLIP ViT-B/32', mR: 35.26 },
  { method: 'GeoRSCLIP-FT', mR: 38.87 },
  { method: 'HarMA', mR: 38.95 },
];

function readJson<T>(entry: ModelEntry, role: 'tokenizer' | 'config', hint: string): T {
  const file = entry.files.find((f) => f.role === role && f.path.includes(hint));
  if (!file) throw new Error(`Model "${entry.id}" lists no ${role} file matching "${hint}"`);
  return JSON.parse(readFileSync(path.join(modelsDir, file.path), 'utf8')) as T;
}

export async function loadRetrieval() {
  const manifest = readManifest();
  const imageEntry = findModel(manifest, IMAGE_TOWER);
  const textEntry = findModel(manifest, TEXT_TOWER);
  const hubnessEntry = findModel(manifest, HUBNESS);
  const [imageSession, textSession, hubnessSession] = await Promise.all([createNodeSession(imageEntry), createNodeSession(textEntry), createNodeSession(hubnessEntry)]);
  const tokenizer = new RetrievalTokenizer(
    readJson<object>(textEntry, 'tokenizer', 'tokenizer.json'),
    readJson<object>(textEntry, 'config', 'tokenizer_config'),
    readJson<CompactVocab>(textEntry, 'tokenizer', 'vocab'),
  );
  const runImage: RunModel = (feeds) => runNodeSession(imageSession, feeds);
  const runText: RunModel = (feeds) => runNodeSession(textSession, feeds);
  const runHubness: RunModel = (feeds) => runNodeSession(hubnessSession, feeds);
  return { imageEntry, textEntry, hubnessEntry, tokenizer, runImage, runText, runHubness };
}

/** Embeds whole images from disk, one row per path (in order). */
export async function embedImageFiles(entry: ModelEntry, run: RunModel, files: string[], log: (done: number) => void = () => {}) {
  let dim = 0;
  const rows: Float32Array[] = [];
  for (const [i, file] of files.entries()) {
    const source = await readImageFile(file);
    const { width, height } = source.info;
    const result = await embedWindows(entry, source, [{ x: 0, y: 0, width, height }], run);
    dim = result.dim;
    rows.push(result.vectors);
    if ((i + 1) % 100 === 0) log(i + 1);
  }
  const vectors = new Float32Array(rows.length * dim);
  rows.forEach((r, i) => vectors.set(r, i * dim));
  return { vectors, dim };
}

function progress(label: string, total: number) {
  const t0 = performance.now();
  return (done: number) => process.stderr.write(`${label}: ${done}/${total} (${(done / ((performance.now() - t0) / 1000)).toFixed(1)}/s)\n`);
}

export const evalRetrieval: Command = {
  name: 'eval retrieval',
  usage: 'eval retrieval --jsonl PATH [--limit N] [--dump FILE]',
  summary: 'image↔text recall R@1/5/10 and mR on a jsonl of {image, captions} (e.g. RSICD val)',
  async run(args) {
    const flags = parseFlags(args, ['jsonl', 'limit', 'dump']);
    if (!flags.jsonl) {
      process.stderr.write('eval retrieval: --jsonl PATH is required (lines {"image": "images/x.jpg", "captions": [...]})\n');
      return EXIT_USAGE;
    }
    const jsonl = path.resolve(flags.jsonl);
    const base = path.dirname(jsonl);
    let records = readFileSync(jsonl, 'utf8')
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as { image: string; captions: string[] });
    if (flags.limit) records = records.slice(0, Number(flags.limit));

    const { imageEntry, hubnessEntry, tokenizer, runImage, runText, runHubness } = await loadRetrieval();
    const t0 = performance.now();
    const images = await embedImageFiles(imageEntry, runImage, records.map((r) => path.join(base, r.image)), progress('images', records.length));
    const imageSeconds = (performance.now() - t0) / 1000;
    const captions = records.flatMap((r) => r.captions);
    const textImage = records.flatMap((r, i) => r.captions.map(() => i));
    const texts = await embedTexts(tokenizer, runText, captions);

    const similarity = new Float32Array(records.length * captions.length);
    for (let i = 0; i < records.length; i++) {
      for (let t = 0; t < captions.length; t++) {
        let s = 0;
        for (let d = 0; d < images.dim; d++) s += images.vectors[i * images.dim + d] * texts.vectors[t * texts.dim + d];
        similarity[i * captions.length + t] = s;
      }
    }
    // raw cosines, float32 [images × captions], row-major: for offline analysis (e.g. re-ranking experiments)
    if (flags.dump) writeFileSync(flags.dump, Buffer.from(similarity.buffer));
    const plain = recallAtK(similarity, records.length, textImage);
    // The app's scores: each image's hubness penalty subtracted (a constant per image, so image→text is unchanged).
    const penalties = await hubnessPenalties(runHubness, images.vectors, images.dim);
    for (let i = 0; i < records.length; i++) for (let t = 0; t < captions.length; t++) similarity[i * captions.length + t] -= penalties[i];
    const r = recallAtK(similarity, records.length, textImage);
    const ours = `RS Lens ${imageEntry.version} (this run: ${path.basename(jsonl)})`;
    printReport({
      title: `Retrieval on ${records.length} images / ${captions.length} captions. Published rows are on the RSICD TEST split; ours on the file given.`,
      columns: [
        { key: 'method' },
        { key: 'i2t_r1', label: 'I→T R@1', digits: 2 },
        { key: 'i2t_r5', label: 'R@5', digits: 2 },
        { key: 'i2t_r10', label: 'R@10', digits: 2 },
        { key: 't2i_r1', label: 'T→I R@1', digits: 2 },
        { key: 't2i_r5', label: 'R@5', digits: 2 },
        { key: 't2i_r10', label: 'R@10', digits: 2 },
        { key: 'mR', digits: 2 },
      ],
      rows: [
        ...[
          { method: ours, rep: r },
          { method: `  the same without the hubness correction`, rep: plain },
        ].map(({ method, rep }) => ({ method, i2t_r1: rep.imageToText.r1, i2t_r5: rep.imageToText.r5, i2t_r10: rep.imageToText.r10, t2i_r1: rep.textToImage.r1, t2i_r5: rep.textToImage.r5, t2i_r10: rep.textToImage.r10, mR: rep.meanRecall })),
        ...PUBLISHED.map((p) => ({ method: `${p.method} (published, test split)`, i2t_r1: null, i2t_r5: null, i2t_r10: null, t2i_r1: null, t2i_r5: null, t2i_r10: null, mR: p.mR })),
      ],
      metrics: {
        images: records.length,
        captions: captions.length,
        model: `${imageEntry.id}@${imageEntry.version}`,
        hubness: `${hubnessEntry.id}@${hubnessEntry.version}`,
        withoutHubness: { imageToText: plain.imageToText, textToImage: plain.textToImage, mR: plain.meanRecall },
        imageToText: r.imageToText,
        textToImage: r.textToImage,
        mR: r.meanRecall,
        imagesPerSecond: records.length / imageSeconds,
      },
    });
    return EXIT_OK;
  },
};

const IMAGE_EXT = /\.(jpe?g|png|tiff?)$/i;

/** Prompt ensemble for a class name; the class embedding is their normalised mean. */
const PROMPTS = ['a satellite image of {}.', 'an aerial photograph of {}.', 'there is a {} in the picture.', 'many {} in this remote sensing image.'];

/** Class folders: PATH/<class>/<images>, folder name = class, `_` read as a space. */
function samplesFromDir(dir: string, limit: number) {
  const classes = readdirSync(dir).filter((d) => statSync(path.join(dir, d)).isDirectory()).sort();
  const samples = classes.flatMap((c, label) =>
    readdirSync(path.join(dir, c))
      .filter((f) => IMAGE_EXT.test(f))
      .sort()
      .slice(0, limit)
      .map((f) => ({ file: path.join(dir, c, f), label })),
  );
  return { names: classes.map((c) => c.replace(/_/g, ' ')), samples };
}

/** The images of a jsonl, classed by a labels.json ({file: "DenseResidential"} → "dense residential"). */
function samplesFromLabels(jsonl: string, labelsFile: string, limit: number) {
  const labels = JSON.parse(readFileSync(labelsFile, 'utf8')) as Record<string, string>;
  const images = readFileSync(jsonl, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => (JSON.parse(l) as { image: string }).image);
  const labelOf = (image: string) => labels[path.basename(image)];
  const classes = [...new Set(images.map(labelOf).filter(Boolean))].sort();
  const samples = classes.flatMap((c, label) =>
    images
      .filter((image) => labelOf(image) === c)
      .slice(0, limit)
      .map((image) => ({ file: path.join(path.dirname(jsonl), image), label })),
  );
  const spaced = (c: string) => c.replace(/([a-z])([A-Z])/g, '$1 $2').replace(/_/g, ' ').toLowerCase();
  return { names: classes.map(spaced), samples };
}

/** The classed images of `--dir PATH` or `--jsonl FILE --labels FILE`, or null after a usage message. */
function classedSamples(command: string, args: string[]) {
  const flags = parseFlags(args, ['dir', 'jsonl', 'labels', 'limit-per-class']);
  const limit = flags['limit-per-class'] ? Number(flags['limit-per-class']) : Infinity;
  let classed;
  if (flags.dir) classed = samplesFromDir(path.resolve(flags.dir), limit);
  else if (flags.jsonl && flags.labels) classed = samplesFromLabels(path.resolve(flags.jsonl), path.resolve(flags.labels), limit);
  else {
    process.stderr.write(`${command}: give --dir PATH (one sub-folder of images per class) or --jsonl FILE --labels FILE\n`);
    return null;
  }
  if (classed.names.length < 2) {
    process.stderr.write(`${command}: at least two classes are needed\n`);
    return null;
  }
  return classed;
}

export const evalZeroShot: Command = {
  name: 'eval zeroshot',
  usage: 'eval zeroshot (--dir PATH | --jsonl FILE --labels FILE) [--limit-per-class N]',
  summary: 'prompt-based zero-shot top-1 on PATH/<class>/<images> (folder = class, _ = space), or on a jsonl classed by labels.json',
  async run(args) {
    const classed = classedSamples('eval zeroshot', args);
    if (!classed) return EXIT_USAGE;
    const { names, samples } = classed;
    const { imageEntry, tokenizer, runImage, runText } = await loadRetrieval();
    const prompts = names.flatMap((n) => PROMPTS.map((p) => p.replace('{}', n)));
    const texts = await embedTexts(tokenizer, runText, prompts);
    const dim = texts.dim;
    const classVectors = new Float32Array(names.length * dim);
    for (let c = 0; c < names.length; c++) {
      let norm = 0;
      for (let d = 0; d < dim; d++) {
        let s = 0;
        for (let p = 0; p < PROMPTS.length; p++) s += texts.vectors[(c * PROMPTS.length + p) * dim + d];
        classVectors[c * dim + d] = s;
        norm += s * s;
      }
      for (let d = 0; d < dim; d++) classVectors[c * dim + d] /= Math.sqrt(norm) || 1;
    }
    const images = await embedImageFiles(imageEntry, runImage, samples.map((s) => s.file), progress('images', samples.length));
    const perClass = names.map(() => ({ n: 0, correct: 0 }));
    samples.forEach((s, i) => {
      const [best] = topK(classVectors, dim, images.vectors.subarray(i * dim, (i + 1) * dim), 1);
      perClass[s.label].n++;
      if (best.index === s.label) perClass[s.label].correct++;
    });
    const correct = perClass.reduce((n, c) => n + c.correct, 0);
    const top1 = (100 * correct) / samples.length;
    printReport({
      title: `Zero-shot classification, ${samples.length} images, ${names.length} classes, ${PROMPTS.length} prompts per class`,
      columns: [{ key: 'class' }, { key: 'images' }, { key: 'top1', label: 'top-1 %', digits: 1 }],
      rows: [
        ...names.map((_, i) => ({ class: names[i], images: perClass[i].n, top1: perClass[i].n ? (100 * perClass[i].correct) / perClass[i].n : null })),
        { class: 'ALL', images: samples.length, top1 },
      ],
      metrics: {
        images: samples.length,
        classes: names.length,
        top1,
        perClass: Object.fromEntries(names.map((c, i) => [c, perClass[i].n ? (100 * perClass[i].correct) / perClass[i].n : null])),
        model: `${imageEntry.id}@${imageEntry.version}`,
      },
    });
    return EXIT_OK;
  },
};

export const evalSimilar: Command = {
  name: 'eval similar',
  usage: 'eval similar (--dir PATH | --jsonl FILE --labels FILE) [--limit-per-class N]',
  summary: 'image→image search ("Similar" in the Search panel): share of the 1/5/10 nearest other images of the same class',
  async run(args) {
    const classed = classedSamples('eval similar', args);
    if (!classed) return EXIT_USAGE;
    const { names, samples } = classed;
    const { imageEntry, runImage } = await loadRetrieval();
    const images = await embedImageFiles(imageEntry, runImage, samples.map((s) => s.file), progress('images', samples.length));
    const labels = samples.map((s) => s.label);
    const ks = [1, 5, 10];
    const overall = classPrecisionAtK(images.vectors, images.dim, labels, ks);
    // Chance level: the share of same-class pairs among all other images.
    const counts = names.map((_, c) => labels.filter((l) => l === c).length);
    const chance = (100 * counts.reduce((n, c) => n + c * (c - 1), 0)) / Math.max(samples.length * (samples.length - 1), 1);
    printReport({
      title: `Image→image search, ${samples.length} images, ${names.length} classes: same-class share of the k nearest other images`,
      columns: [{ key: 'k' }, { key: 'precision', label: 'same class %', digits: 1 }, { key: 'chance', label: 'chance %', digits: 1 }],
      rows: ks.map((k) => ({ k: `P@${k}`, precision: overall[k], chance })),
      metrics: {
        images: samples.length,
        classes: names.length,
        precisionAt1: overall[1],
        precisionAt5: overall[5],
        precisionAt10: overall[10],
        chance,
        model: `${imageEntry.id}@${imageEntry.version}`,
      },
    });
    return EXIT_OK;
  },
};
