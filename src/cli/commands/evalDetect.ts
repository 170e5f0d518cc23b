/**
 * `eval detect`: the detector on onnxruntime-node over a YOLO-labelled folder, with exactly the
 * app's sliced inference (src/core/detect) and the COCO-style AP with AI-TOD size bins of
 * models/detection/evaluate.py (ported in core/detect/cocoEval.ts). `--python PYTHON` scores the
 * same predictions with the Python reference too and prints the largest difference.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { findModel, type ModelEntry } from '../../core/models/manifest';
import { cocoEval, SIZE_BIN_NAMES, type Box, type CocoResult, type ImageBoxes } from '../../core/detect/cocoEval';
import { datasetClassMap, parseYoloLabels, splitOf, type SplitName } from '../../core/detect/dataset';
import { parseDetectorSpec, type DetectorSpec } from '../../core/detect/detectorSpec';
import { detectSliced, type RunDetector } from '../../core/detect/slicedDetect';
import { readImageFile } from '../io/readImageFile';
import { readManifest } from '../manifestFiles';
import { createNodeSession, runNodeSession } from '../ortNode';
import { modelsDir, repoRoot, sharedDir } from '../paths';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, type Command } from '../registry';
import { printReport, type Row } from '../report';
import { parseFlags } from '../flags';
import { cocoYoloxRunner } from '../../core/detect/cocoYolox';

export const DETECTOR_ID = 'detector';

export interface NodeDetector {
  spec: DetectorSpec;
  run: RunDetector;
  /** What was evaluated, for the report. */
  label: string;
}

/** An ONNX file outside the manifest (e.g. a provisional export under models/runs/) as a manifest-like entry. */
function adHocEntry(onnxPath: string): ModelEntry {
  return {
    id: 'detector-file',
    family: 'detect',
    version: 'file',
    title: path.basename(onnxPath),
    files: [{ path: path.basename(onnxPath), bytes: 1, sha256: '0'.repeat(64), role: 'onnx' }],
    inputs: [{ name: 'images', dtype: 'float32', shape: [1, 3, 'height', 'width'] }],
    outputs: [{ name: 'output', dtype: 'float32', shape: [1, 'anchors', 'values'] }],
    licence: 'see the model card',
    source: onnxPath,
  };
}

/**
 * The manifest's detector (ONNX + its metadata JSON, role "config"), or `modelPath` (a .onnx
 * with its metadata beside it, same name .json, unless `metaPath` says otherwise).
 */
export async function loadNodeDetector(modelPath?: string, metaPath?: string): Promise<NodeDetector> {
  let entry: ModelEntry;
  let dir = modelsDir;
  let meta: string;
  if (modelPath) {
    const onnx = path.resolve(modelPath);
    entry = adHocEntry(onnx);
    dir = path.dirname(onnx);
    meta = path.resolve(metaPath ?? onnx.replace(/\.onnx$/, '.json'));
  } else {
    entry = findModel(readManifest(), DETECTOR_ID);
    const config = entry.files.find((f) => f.role === 'config');
    if (!config) throw new Error(`model "${DETECTOR_ID}" lists no metadata file (role "config") in models/manifest.json`);
    meta = path.join(modelsDir, config.path);
  }
  const spec = parseDetectorSpec(JSON.parse(readFileSync(meta, 'utf8')));
  const session = await createNodeSession(entry, dir);
  const run: RunDetector = async (input) => (await runNodeSession(session, { [spec.inputName]: input }))[spec.outputName];
  return { spec, run, label: modelPath ? path.relative(repoRoot, path.resolve(modelPath)) : `${entry.id}@${entry.version}` };
}

const IMAGE_EXT = /\.(jpe?g|png|tiff?)$/i;

interface EvalImage {
  file: string;
  name: string;
}

function selectImages(dir: string, split: string | undefined, files: string | undefined, limit: number): EvalImage[] {
  let names = readdirSync(path.join(dir, 'images')).filter((f) => IMAGE_EXT.test(f)).sort();
  if (files) {
    const wanted = files.split(',').map((f) => f.trim()).filter(Boolean);
    const missing = wanted.filter((f) => !names.includes(f));
    if (missing.length) throw new Error(`not in ${dir}/images: ${missing.join(', ')}`);
    names = wanted;
  } else if (split && split !== 'all') {
    names = names.filter((n) => splitOf(n) === (split as SplitName));
  }
  return names.slice(0, limit).map((name) => ({ name, file: path.join(dir, 'images', name) }));
}

/** Scores the same predictions and ground truth with models/detection/evaluate.py's coco_eval. */
function pythonCocoEval(python: string, preds: ImageBoxes[], gts: ImageBoxes[], classes: string[]): CocoResult {
  const tmp = mkdtempSync(path.join(tmpdir(), 'rslens-eval-'));
  try {
    const input = path.join(tmp, 'boxes.json');
    writeFileSync(input, JSON.stringify({ preds, gts, classes }));
    const script = [
      'import json, sys, numpy as np',
      'from models.detection.evaluate import coco_eval',
      'd = json.load(open(sys.argv[1]))',
      'arr = lambda v, t: np.array(v, t)',
      'P = [{"boxes": arr(p["boxes"], np.float64).reshape(-1, 4), "scores": arr(p["scores"], np.float64), "labels": arr(p["labels"], np.int64)} for p in d["preds"]]',
      'G = [{"boxes": arr(g["boxes"], np.float64).reshape(-1, 4), "labels": arr(g["labels"], np.int64)} for g in d["gts"]]',
      'print(json.dumps(coco_eval(P, G, len(d["classes"]))))',
    ].join('\n');
    const out = execFileSync(python, ['-c', script, input], { cwd: repoRoot, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 << 20 });
    return JSON.parse(out.trim().split('\n').pop()!) as CocoResult;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

function largestDifference(a: CocoResult, b: CocoResult): number {
  let worst = 0;
  for (const [name, bins] of Object.entries(a.per_class)) {
    for (const bin of SIZE_BIN_NAMES) {
      for (const key of ['AP', 'AP50', 'AP75', 'n_gt'] as const) worst = Math.max(worst, Math.abs(bins[bin][key] - b.per_class[name][bin][key]));
    }
  }
  return worst;
}

const round = (v: number) => (v < 0 ? null : Number(v.toFixed(4)));

interface DetectorEvaluation {
  preds: ImageBoxes[];
  gts: ImageBoxes[];
  result: CocoResult;
  seconds: number;
  megapixels: number;
  tiles: number;
}

/** Sliced detection over the images, exactly as the app runs it, then COCO-style AP. */
async function evaluateDetector(detector: NodeDetector, dir: string, images: EvalImage[], classMap: (number | null)[]): Promise<DetectorEvaluation> {
  const { spec } = detector;
    const preds: ImageBoxes[] = [];
    const gts: ImageBoxes[] = [];
    let megapixels = 0;
    let tiles = 0;
    const t0 = performance.now();
    for (const [i, image] of images.entries()) {
      const source = await readImageFile(image.file);
      const { width, height } = source.info;
      const labelFile = path.join(dir, 'labels', image.name.replace(/\.[^.]+$/, '.txt'));
      gts.push(parseYoloLabels(existsSync(labelFile) ? readFileSync(labelFile, 'utf8') : '', width, height, classMap));
      const result = await detectSliced(source, spec, detector.run, { conf: spec.confEval, maxDets: spec.maxDets });
      preds.push({
        boxes: result.detections.map((d) => [d.x1, d.y1, d.x2, d.y2] as Box),
        scores: result.detections.map((d) => d.score),
        labels: result.detections.map((d) => d.classIndex),
      });
      megapixels += (width * height) / 1e6;
      tiles += result.tiles;
      process.stderr.write(`eval detect: ${i + 1}/${images.length} ${image.name} ${width}×${height}, ${result.tiles} tiles, ${result.detections.length} detections\n`);
    }
    const seconds = (performance.now() - t0) / 1000;
    const result = cocoEval(preds, gts, spec.classes);
    return { preds, gts, result, seconds, megapixels, tiles };

}

/** The COCO YOLOX-Nano (zero-shot, mapped classes) sliced like our detector, in our spec's format. */
async function cocoZeroShotDetector(like: DetectorSpec): Promise<NodeDetector> {
  const onnx = path.join(sharedDir, 'weights/yolox_nano_coco.onnx');
  const session = await createNodeSession(adHocEntry(onnx), path.dirname(onnx));
  const raw: RunDetector = async (input) => Object.values(await runNodeSession(session, { images: input }))[0];
  return { spec: like, run: cocoYoloxRunner(raw, like.tileSize, like.classes), label: 'YOLOX-Nano COCO zero-shot (car; bus+truck; boat)' };
}

/**
 * The issue's comparison in one table: COCO YOLOX-Nano zero-shot, our detector without the
 * RS-TinyNet modules (models/detection/baseline.onnx) and the shipped one (the manifest's).
 */
async function compareDetectors(dir: string, images: EvalImage[], datasetClasses: string[], split?: string, files?: string): Promise<number> {
  const shipped = await loadNodeDetector();
  const detectors = [
    await cocoZeroShotDetector(shipped.spec),
    { ...(await loadNodeDetector(path.join(modelsDir, 'detection/baseline.onnx'))), label: 'ours without RS-TinyNet modules (baseline.onnx)' },
    { ...shipped, label: `ours with RS-TinyNet modules (${shipped.label})` },
  ];
  const rows: Row[] = [];
  const metrics: Record<string, unknown> = {};
  for (const detector of detectors) {
    process.stderr.write(`eval detect: ${detector.label}\n`);
    const classMap = datasetClassMap(path.basename(dir), datasetClasses, detector.spec);
    const { result } = await evaluateDetector(detector, dir, images, classMap);
    const perClass = Object.fromEntries(Object.entries(result.per_class).map(([c, bins]) => [`${c}_AP50`, round(bins.all.AP50)]));
    rows.push({ model: detector.label, AP: round(result.overall.all.AP), AP50: round(result.overall.all.AP50), AP75: round(result.overall.all.AP75), ...perClass });
    metrics[detector.label] = result;
  }
  const classColumns = shipped.spec.classes.map((c) => ({ key: `${c}_AP50`, label: `${c} AP50`, digits: 3 }));
  printReport({
    title: `Detector comparison on ${images.length} images of ${path.basename(dir)} (${files ? 'listed files' : `split ${split ?? 'all'}`}), same slicing/NMS/AP as the app; overall = mean over classes with ground truth`,
    columns: [{ key: 'model' }, { key: 'AP', digits: 3 }, { key: 'AP50', digits: 3 }, { key: 'AP75', digits: 3 }, ...classColumns],
    rows,
    metrics: { dataset: path.basename(dir), images: images.length, models: metrics },
  });
  return EXIT_OK;
}


export const evalDetect: Command = {
  name: 'eval detect',
  usage: 'eval detect --dir PATH [--split val|train|test|all | --files a.jpg,b.jpg] [--limit N] [--model X.onnx [--meta X.json]] [--python PYTHON] [--compare]',
  summary: 'detector COCO-style AP/AP50/AP75 with AI-TOD size bins on PATH/{images,labels,classes.txt} (YOLO labels), sliced as in the app',
  async run(args) {
    const flags = parseFlags(args, ['dir', 'split', 'files', 'limit', 'model', 'meta', 'python'], ['compare']);
    if (!flags.dir) {
      process.stderr.write('eval detect: --dir PATH is required (PATH/images, PATH/labels with YOLO txt, PATH/classes.txt)\n');
      return EXIT_USAGE;
    }
    if (flags.split && !['val', 'train', 'test', 'all'].includes(flags.split)) {
      process.stderr.write(`eval detect: --split must be val, train, test or all, got "${flags.split}"\n`);
      return EXIT_USAGE;
    }
    const dir = path.resolve(flags.dir);
    if (!existsSync(path.join(dir, 'classes.txt'))) {
      process.stderr.write(`eval detect: ${dir}/classes.txt not found\n`);
      return EXIT_USAGE;
    }
    const images = selectImages(dir, flags.split, flags.files, flags.limit ? Number(flags.limit) : Infinity);
    if (images.length === 0) {
      process.stderr.write(`eval detect: no images selected in ${dir}/images\n`);
      return EXIT_USAGE;
    }

    const detector = await loadNodeDetector(flags.model, flags.meta);
    const { spec } = detector;
    const datasetClasses = readFileSync(path.join(dir, 'classes.txt'), 'utf8').split('\n').map((l) => l.trim()).filter(Boolean);
    const classMap = datasetClassMap(path.basename(dir), datasetClasses, spec);
    const dropped = datasetClasses.filter((_, i) => classMap[i] === null);
    if (dropped.length) process.stderr.write(`eval detect: dataset classes not in the detector (ignored): ${dropped.join(', ')}\n`);

    if (flags.compare) return compareDetectors(dir, images, datasetClasses, flags.split, flags.files);
    const { preds, gts, result, seconds, megapixels, tiles } = await evaluateDetector(detector, dir, images, classMap);

    let python: { maxAbsDiff: number; agree: boolean } | null = null;
    if (flags.python) {
      const reference = pythonCocoEval(flags.python, preds, gts, spec.classes);
      const maxAbsDiff = largestDifference(result, reference);
      python = { maxAbsDiff, agree: maxAbsDiff < 1e-9 };
      process.stderr.write(`eval detect: Python coco_eval on the same predictions: max |Δ| = ${maxAbsDiff.toExponential(2)} over every class, bin and metric\n`);
    }

    const rowOf = (name: string, bins: CocoResult['overall']): Row => ({
      class: name,
      n_gt: bins.all.n_gt,
      AP: round(bins.all.AP),
      AP50: round(bins.all.AP50),
      AP75: round(bins.all.AP75),
      AP_vt: round(bins.very_tiny.AP),
      AP_t: round(bins.tiny.AP),
      AP_s: round(bins.small.AP),
      AP_m: round(bins.medium.AP),
    });
    printReport({
      title: `Detection on ${images.length} images of ${path.basename(dir)} (${flags.files ? 'listed files' : `split ${flags.split ?? 'all'}`}), ${detector.label}, tiles ${spec.tileSize}/${spec.overlap}, conf ${spec.confEval}, NMS ${spec.nmsIou}; – = no ground truth`,
      columns: [
        { key: 'class' },
        { key: 'n_gt' },
        ...['AP', 'AP50', 'AP75', 'AP_vt', 'AP_t', 'AP_s', 'AP_m'].map((key) => ({ key, digits: 3 })),
      ],
      rows: [...Object.entries(result.per_class).map(([name, bins]) => rowOf(name, bins)), rowOf('overall', result.overall)],
      metrics: {
        model: detector.label,
        dataset: path.basename(dir),
        split: flags.files ? 'files' : (flags.split ?? 'all'),
        images: images.length,
        tiles,
        seconds,
        megapixelsPerSecond: megapixels / seconds,
        ...result,
        pythonCheck: python,
      },
    });
    return python && !python.agree ? EXIT_FAILED : EXIT_OK;
  },
};
