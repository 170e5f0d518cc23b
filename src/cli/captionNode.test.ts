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

  it('decodes the same tokens with the experts run one after another', async () => {
    const parallel = await ask('river_62.jpg', m.config.caption_instruction, { task: 'caption' });
    const sequential = await ask('river_62.jpg', m.config.caption_instruction, { task: 'caption', sequential: true });
    expect(sequential.tokens.map((t) => t.id)).toEqual(parallel.tokens.map((t) => t.id));
  });
});
