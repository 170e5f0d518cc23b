/**
 * The search's hubness model (models/retrieval/hubness.py): the graph computes beta × the mean of an
 * embedding's k largest cosines to its bank of train captions, and the core code that the worker and
 * the CLI share feeds it real image embeddings in batches of any size.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { findModel } from '../core/models/manifest';
import { embedWindows, hubnessPenalties } from '../core/retrieval/embed';
import { HUBNESS } from '../core/retrieval/modelIds';
import { loadRetrieval } from './commands/evalRetrieval';
import { readImageFile } from './io/readImageFile';
import { readManifest } from './manifestFiles';
import { sharedDir } from './paths';
import { runSelfTest } from './selfTest';

const images = readFileSync(path.join(sharedDir, 'data/rsicd/val.jsonl'), 'utf8')
  .split('\n')
  .filter(Boolean)
  .slice(0, 6)
  .map((l) => path.join(sharedDir, 'data/rsicd', (JSON.parse(l) as { image: string }).image));

describe('hubness penalties for text search', () => {
  it('the graph matches its float64 reference (beta × mean of the top-k cosines to the dequantised bank)', async () => {
    const { comparisons } = await runSelfTest(findModel(readManifest(), HUBNESS));
    expect(comparisons).toHaveLength(1);
    expect(comparisons[0].pass, JSON.stringify(comparisons)).toBe(true);
  });

  it('penalises real image embeddings alike in any batch size, within (0, beta]', async () => {
    const { imageEntry, runImage, runHubness } = await loadRetrieval();
    const rows: Float32Array[] = [];
    let dim = 0;
    for (const file of images) {
      const source = await readImageFile(file);
      const result = await embedWindows(imageEntry, source, [{ x: 0, y: 0, width: source.info.width, height: source.info.height }], runImage);
      rows.push(result.vectors);
      dim = result.dim;
    }
    const vectors = new Float32Array(rows.length * dim);
    rows.forEach((r, i) => vectors.set(r, i * dim));
    const all = await hubnessPenalties(runHubness, vectors, dim);
    const inFours = await hubnessPenalties(runHubness, vectors, dim, 4);
    expect(all).toHaveLength(6);
    for (let i = 0; i < 6; i++) {
      expect(inFours[i]).toBeCloseTo(all[i], 6);
      // Cosines of an image to captions lie well inside (0, 1); beta is 0.5.
      expect(all[i]).toBeGreaterThan(0);
      expect(all[i]).toBeLessThanOrEqual(0.5);
    }
    expect(new Set(Array.from(all, (p) => p.toFixed(4))).size, 'penalties differ between images').toBeGreaterThan(1);
  });
});
