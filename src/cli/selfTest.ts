/** Runs a manifest model's self-test (reference input → compare to the PyTorch reference) on onnxruntime-node. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { ModelEntry } from '../core/models/manifest';
import { maxAbsDiff, tensorFromJson, type JsonTensor, type TensorMap } from '../core/models/tensor';
import { createNodeSession, runNodeSession } from './ortNode';
import { modelsDir } from './paths';

export interface Reference {
  inputs: Record<string, JsonTensor>;
  outputs: Record<string, JsonTensor>;
}

export function readReference(entry: ModelEntry, dir = modelsDir): Reference {
  if (!entry.selfTest) throw new Error(`model "${entry.id}" has no selfTest in the manifest`);
  return JSON.parse(readFileSync(path.join(dir, entry.selfTest.reference), 'utf8')) as Reference;
}

export function referenceFeeds(ref: Reference): TensorMap {
  return Object.fromEntries(Object.entries(ref.inputs).map(([name, t]) => [name, tensorFromJson(t)]));
}

export interface OutputComparison {
  output: string;
  maxAbsDiff: number;
  tolerance: number;
  pass: boolean;
}

export async function runSelfTest(entry: ModelEntry): Promise<{ comparisons: OutputComparison[]; runMs: number }> {
  const ref = readReference(entry);
  const session = await createNodeSession(entry);
  try {
    const t0 = performance.now();
    const outputs = await runNodeSession(session, referenceFeeds(ref));
    const runMs = performance.now() - t0;
    const tolerance = entry.selfTest!.tolerance;
    const comparisons = Object.entries(ref.outputs).map(([output, expected]) => {
      const got = outputs[output];
      const diff = got ? maxAbsDiff(got, tensorFromJson(expected)) : Infinity;
      return { output, maxAbsDiff: diff, tolerance, pass: diff <= tolerance };
    });
    return { comparisons, runMs };
  } finally {
    await session.release();
  }
}
