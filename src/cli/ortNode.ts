/** onnxruntime-node sessions for manifest models, fed with our plain TensorData. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { onnxFile, type ModelEntry } from '../core/models/manifest';
import type { TensorData, TensorDtype, TensorMap } from '../core/models/tensor';
import { modelsDir } from './paths';
import { SESSION_CONFIG } from '../runtime/sessionConfig';

export async function createNodeSession(entry: ModelEntry, dir = modelsDir): Promise<ort.InferenceSession> {
  const file = path.join(dir, onnxFile(entry).path);
  return ort.InferenceSession.create(readFileSync(file), { executionProviders: ['cpu'], logSeverityLevel: 3, extra: SESSION_CONFIG });
}

export async function runNodeSession(session: ort.InferenceSession, feeds: TensorMap): Promise<TensorMap> {
  const ortFeeds: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = new ort.Tensor(t.dtype, t.data, t.dims);
  const results = await session.run(ortFeeds);
  const out: TensorMap = {};
  for (const [name, t] of Object.entries(results)) {
    out[name] = { dtype: t.type as TensorDtype, dims: [...t.dims], data: (t.data as TensorData['data']).slice() };
  }
  return out;
}
