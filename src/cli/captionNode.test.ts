/** The exported caption/VQA graphs on onnxruntime-node through the app's core pipeline (real model files). */
import path from 'node:path';
import { existsSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { checkInstruction, runInstruction } from '../core/caption/pipeline';
import { loadCaptionModels, type NodeCaptionModels } from './captionNode';
import { sharedDir } from './paths';

const image = (name: string) => path.join(sharedDir, 'data/rsicd/images', name);
const haveData = existsSync(image('airport_61.jpg'));

describe.skipIf(!haveData)('caption pipeline on onnxruntime-node', () => {
  let m: NodeCaptionModels;
  beforeAll(async () => {
    m = await loadCaptionModels();
  }, 60_000);

  const ask = async (file: string, text: string, options: { task?: 'caption'; sequential?: boolean } = {}) =>
    runInstruction(m.config, m.tokenizer, m, await m.gridOfFile(image(file)), checkInstruction(m.tokenizer, text), options);

  it('captions a validation airport as an airport, with all three experts fused', async () => {
    const r = await ask('airport_61.jpg', m.config.caption_instruction, { task: 'caption' });
    expect(r.text).toMatch(/airport|plane|runway/);
    expect(r.route.experts).toEqual([0, 1, 2]);
    expect(r.stop).toBe('eos');
    for (const t of r.tokens) expect(t.weights.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    expect(r.parts.map((p) => p.role)).toEqual(m.config.experts.map((e) => e.role));
  });

  it('routes questions: scene questions to the scene expert, counting to the objects expert', async () => {
    const scene = await ask('beach_63.jpg', 'what type of scene is this?');
    expect(scene.route).toMatchObject({ task: 'question', experts: [0] });
    expect(scene.text).toBe('beach');
    const count = await ask('parking_64.jpg', 'how many cars are there?');
    expect(count.route.experts).toEqual([1]);
    expect(count.text).toMatch(/^(\d+|more than 20)$/);
  });

  it('beam rows follow their parents: a reordered cache row continues exactly that row', async () => {
    const grid = await m.gridOfFile(image('port_64.jpg'));
    const routed = await m.route({
      instruction_ids: { dtype: 'int64', dims: [1, 2], data: BigInt64Array.from([100n, 200n]) },
      instruction_mask: { dtype: 'int64', dims: [1, 2], data: BigInt64Array.from([1n, 1n]) },
    });
    const qf = (await m.query({ grid, instruction_embedding: routed.instruction_embedding })).query_features;
    const prompt = [m.config.tokenizer.role_id, 1378, 61, 669, 22, m.config.tokenizer.bos_id];
    const [expert] = m.decoders;
    const V = m.config.tokenizer.vocab_size;
    await expert.begin(qf, prompt, 2);
    await expert.step([381, 470]); // row 0 "many", row 1 "road"
    const beams = await expert.step([132, 132], [1, 1]); // both rows continue row 1
    await expert.begin(qf, prompt, 1);
    await expert.step([470]);
    const single = await expert.step([132]);
    const row = (o: { logProbs: Float32Array }, r: number) => Array.from(o.logProbs.subarray(r * V, (r + 1) * V));
    const maxDiff = (a: number[], b: number[]) => Math.max(...a.map((x, i) => Math.abs(x - b[i])));
    expect(maxDiff(row(beams, 0), row(single, 0))).toBeLessThan(1e-4);
    expect(maxDiff(row(beams, 1), row(single, 0))).toBeLessThan(1e-4);
  });

  it('decodes the same tokens with the experts run one after another', async () => {
    const parallel = await ask('river_62.jpg', m.config.caption_instruction, { task: 'caption' });
    const sequential = await ask('river_62.jpg', m.config.caption_instruction, { task: 'caption', sequential: true });
    expect(sequential.tokens.map((t) => t.id)).toEqual(parallel.tokens.map((t) => t.id));
  });
});
