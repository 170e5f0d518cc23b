/**
 * Ground truth for `eval detect`: YOLO label files, dataset classes mapped onto the detector's
 * classes through its metadata's class merge, and the validation split of the detection
 * engineer (models/detection/data.py: whole groups by file-name prefix, never single frames).
 */
import type { Box } from './cocoEval';
import type { DetectorSpec } from './detectorSpec';

/**
 * Dataset class index → model class index (or null: not a detector class, dropped).
 * `datasetName` is the folder name, matched against class-merge entries "<dataset> <class>".
 */
export function datasetClassMap(datasetName: string, datasetClasses: string[], spec: DetectorSpec): (number | null)[] {
  const sources = Object.entries(spec.classMerge).flatMap(([modelClass, from]) => from.map((entry) => ({ modelClass, entry })));
  return datasetClasses.map((name) => {
    const exact = sources.find((s) => s.entry === `${datasetName} ${name}`);
    const byClass = exact ?? sources.find((s) => s.entry.split(' ').pop() === name);
    const modelClass = byClass?.modelClass ?? (spec.classes.includes(name) ? name : null);
    return modelClass === null ? null : spec.classes.indexOf(modelClass);
  });
}

/** YOLO lines `class cx cy w h` (normalised) → xyxy pixel boxes, clipped to the image, float32 like data.py. */
export function parseYoloLabels(text: string, width: number, height: number, classMap: (number | null)[]): { boxes: Box[]; labels: number[] } {
  const boxes: Box[] = [];
  const labels: number[] = [];
  for (const line of text.split('\n')) {
    const parts = line.split(/\s+/).filter(Boolean);
    if (parts.length !== 5) continue;
    const label = classMap[Number.parseInt(parts[0], 10)];
    if (label === null || label === undefined) continue;
    const [cx, cy, w, h] = parts.slice(1).map(Number);
    const f = (v: number, max: number) => Math.min(Math.max(Math.fround(v), 0), max);
    boxes.push([f((cx - w / 2) * width, width), f((cy - h / 2) * height, height), f((cx + w / 2) * width, width), f((cy + h / 2) * height, height)]);
    labels.push(label);
  }
  return { boxes, labels };
}

export type SplitName = 'train' | 'val' | 'test';

/** Group of an aerial-cars frame, as group_of in models/detection/data.py. */
export function groupOf(fileName: string): string {
  const base = fileName.replace(/\.[^.]+$/, '');
  if (base.startsWith('MunichStreet02-MOS')) return 'MunichStreet02-MOS';
  if (base.startsWith('MOS')) return 'MOS';
  if (base.startsWith('harlem')) return 'harlem';
  if (base.startsWith('DJI')) return `DJI-${base.replace(/_/g, '-').split('-')[1]}`;
  return 'other';
}

/** data.py's VAL_GROUPS / TEST_GROUPS (MODEL_CARD.md "Split"); everything else trains. */
const SPLIT_GROUPS: Record<string, SplitName> = { MOS: 'val', 'DJI-0762': 'val', harlem: 'test' };

export function splitOf(fileName: string): SplitName {
  return SPLIT_GROUPS[groupOf(fileName)] ?? 'train';
}
