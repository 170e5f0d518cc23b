/**
 * Main-thread side of captioning: loads the caption models into their workers (the image encoder,
 * router and query module into the caption worker; each expert into its own caption-expert
 * worker, or all into one when parallel decoding is off), wires the expert workers to the
 * caption worker with MessageChannels, and forwards jobs.
 */
import * as Comlink from 'comlink';
import type { CaptionJob, CaptionJobResult, CaptionModelIds, CaptionModelInfo, CaptionUpdate, CaptionWorkerApi, ExpertWorkerApi } from '../../workers/captionWorkerApi';
import { callModelWorker } from '../../workers/modelWorkers';
import { useModelsStore } from '../models/modelsStore';

export const CAPTION_MODEL_IDS: CaptionModelIds = {
  imageEncoder: 'caption-encoder',
  router: 'caption-router',
  query: 'caption-query',
  experts: ['caption-expert0', 'caption-expert1', 'caption-expert2'],
};

const CAPTION_WORKER = 'caption';
const expertWorkerKey = (expert: number, parallel: boolean) => `caption-expert#${parallel ? expert : 0}`;

let setup: { parallel: boolean; ready: Promise<CaptionModelInfo> } | null = null;

async function loadInto(modelId: string, workerKey: string): Promise<void> {
  const loaded = await useModelsStore.getState().ensureLoaded(modelId, workerKey);
  if (!loaded) throw new Error(`Could not load model "${modelId}": ${useModelsStore.getState().models[modelId]?.error ?? 'unknown error'}`);
}

async function prepare(parallel: boolean): Promise<CaptionModelInfo> {
  const models = useModelsStore.getState();
  if (!models.manifest) await models.init();
  if (!useModelsStore.getState().manifest) throw new Error(useModelsStore.getState().manifestError ?? 'model manifest unavailable');
  const ids = CAPTION_MODEL_IDS;
  await Promise.all([
    ...[ids.imageEncoder, ids.router, ids.query].map((id) => loadInto(id, CAPTION_WORKER)),
    ...ids.experts.map((id, e) => loadInto(id, expertWorkerKey(e, parallel))),
  ]);
  const info = await callModelWorker<CaptionModelInfo, CaptionWorkerApi>(CAPTION_WORKER, (w) => w.configure(ids));
  for (let e = 0; e < ids.experts.length; e++) {
    const channel = new MessageChannel();
    await callModelWorker<void, ExpertWorkerApi>(expertWorkerKey(e, parallel), (w) => w.connect(Comlink.transfer(channel.port1, [channel.port1])));
    await callModelWorker<void, CaptionWorkerApi>(CAPTION_WORKER, (w) => w.attachExpert(e, Comlink.transfer(channel.port2, [channel.port2])));
  }
  return info;
}

/** Loads and wires the models once (again when the parallel setting changes). */
export function ensureCaptionModels(parallel: boolean): Promise<CaptionModelInfo> {
  if (!setup || setup.parallel !== parallel) {
    const ready = prepare(parallel);
    setup = { parallel, ready };
    ready.catch(() => {
      if (setup?.ready === ready) setup = null; // a failed setup is retried next time
    });
  }
  return setup.ready;
}

export async function runCaptionJob(job: CaptionJob, onUpdate: (u: CaptionUpdate) => void): Promise<CaptionJobResult> {
  return callModelWorker<CaptionJobResult, CaptionWorkerApi>(CAPTION_WORKER, (w) => w.runJob(job, Comlink.proxy(onUpdate)));
}

export async function cancelCaptionJob(jobId: string): Promise<void> {
  await callModelWorker<void, CaptionWorkerApi>(CAPTION_WORKER, (w) => w.cancel(jobId));
}

/** The backend the experts run on (what the user cares about for speed). */
export function captionBackend(): string {
  const models = useModelsStore.getState().models;
  const backends = new Set(CAPTION_MODEL_IDS.experts.map((id) => models[id]?.load?.backend).filter(Boolean));
  return [...backends].join('+') || 'not loaded';
}
