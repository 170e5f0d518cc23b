/**
 * Caption slice: a caption per loaded image (started on drop unless turned off) and questions
 * about the region around a clicked point. Jobs run one at a time in the caption worker
 * (the experts keep one decoding state each); questions go ahead of queued captions.
 */
import { create } from 'zustand';
import { createJSONStorage, persist } from 'zustand/middleware';
import type { Route, Task } from '../../core/caption/generate';
import type { PixelWindow } from '../../core/raster/types';
import type { MapController } from '../../map/mapController';
import type { CaptionJobResult, CaptionModelInfo } from '../../workers/captionWorkerApi';
import { imageRegistry } from '../layers/imageRegistry';
import { useLayersStore, type LoadedImage } from '../layers/layersStore';
import { download } from '../search/exportHits';
import { cancelCaptionJob, captionBackend, ensureCaptionModels, runCaptionJob } from './captionClient';

export type JobStatus = 'queued' | 'running' | 'done' | 'stopped' | 'error';

interface JobRecord {
  jobId: string;
  status: JobStatus;
  /** Text so far (streams while running). */
  text: string;
  route: Route | null;
  result: CaptionJobResult | null;
  error: string | null;
  backend: string | null;
}

export interface CaptionRecord extends JobRecord {
  imageId: string;
  imageName: string;
}

export interface QaRecord extends JobRecord {
  imageId: string;
  question: string;
  window: PixelWindow;
  /** Pixel position asked about, and its lon/lat when the image is georeferenced. */
  point: { col: number; row: number };
  lonLat: [number, number] | null;
  askedAt: string;
  warnings: string[];
}

export interface AskTarget {
  imageId: string;
  imageName: string;
  col: number;
  row: number;
  lonLat: [number, number] | null;
  /** Where the box is anchored, in view coordinates. */
  coordinate: [number, number];
}

export const REGION_SIZES = [64, 128, 224, 256, 384, 512, 768, 1024, 2048];
export const SUGGESTED_QUESTIONS = ['what type of scene is this?', 'are there any ships?', 'how many cars are there?', 'is there a river?', 'what is next to the building?'];
const HISTORY_PER_IMAGE = 30;
/** Beam width of "better captions" (the width the model card reports). */
export const CAPTION_BEAMS = 3;

interface CaptionState {
  autoCaption: boolean;
  parallelExperts: boolean;
  /** Beam search for captions (better captions, slower first words). */
  beamSearch: boolean;
  regionSize: number;
  models: { status: 'idle' | 'loading' | 'ready' | 'error'; error: string | null; info: CaptionModelInfo | null };
  captions: Record<string, CaptionRecord>;
  ask: AskTarget | null;
  /** Message for a click that found no image. */
  askMiss: { coordinate: [number, number]; message: string } | null;
  history: Record<string, QaRecord[]>;

  setAutoCaption(on: boolean): void;
  setParallelExperts(on: boolean): void;
  setBeamSearch(on: boolean): void;
  setRegionSize(size: number, controller?: MapController): void;
  captionImage(imageId: string): void;
  stop(jobId: string): void;
  openAskAt(controller: MapController, coordinate: [number, number]): void;
  closeAsk(controller: MapController): void;
  askQuestion(question: string): Promise<void>;
  forgetImage(imageId: string): void;
  exportJson(): void;
}

/** The square the model sees: `size` px around the point, kept inside the image. */
export function regionWindow(image: Pick<LoadedImage, 'info'>, col: number, row: number, size: number): PixelWindow {
  const { width, height } = image.info;
  const w = Math.min(size, width);
  const h = Math.min(size, height);
  const x = Math.round(Math.min(Math.max(col - w / 2, 0), width - w));
  const y = Math.round(Math.min(Math.max(row - h / 2, 0), height - h));
  return { x, y, width: w, height: h };
}

let nextJob = 0;
const newJobId = (kind: string) => `${kind}-${Date.now().toString(36)}-${nextJob++}`;

interface QueuedJob {
  jobId: string;
  run: () => Promise<void>;
  drop: () => void;
}
const queue: QueuedJob[] = [];
let running: string | null = null;

async function pump(): Promise<void> {
  if (running) return;
  const job = queue.shift();
  if (!job) return;
  running = job.jobId;
  try {
    await job.run();
  } finally {
    running = null;
    void pump();
  }
}

function emptyJob(jobId: string): JobRecord {
  return { jobId, status: 'queued', text: '', route: null, result: null, error: null, backend: null };
}

export const useCaptionStore = create<CaptionState>()(
  persist(
    (set, get) => {
      const patchCaption = (imageId: string, patch: Partial<CaptionRecord>) =>
        set((s) => (s.captions[imageId] ? { captions: { ...s.captions, [imageId]: { ...s.captions[imageId], ...patch } } } : {}));
      const patchQa = (imageId: string, jobId: string, patch: Partial<QaRecord>) =>
        set((s) => ({ history: { ...s.history, [imageId]: (s.history[imageId] ?? []).map((q) => (q.jobId === jobId ? { ...q, ...patch } : q)) } }));

      async function models(): Promise<void> {
        if (get().models.status !== 'ready') set({ models: { status: 'loading', error: null, info: null } });
        try {
          const info = await ensureCaptionModels(get().parallelExperts);
          set({ models: { status: 'ready', error: null, info } });
        } catch (err) {
          set({ models: { status: 'error', error: (err as Error).message, info: null } });
          throw err;
        }
      }

      /** Runs one job; `patch` updates its record (caption or Q&A). */
      async function execute(jobId: string, imageId: string, window: PixelWindow | null, instruction: string, task: Task | undefined, patch: (p: Partial<JobRecord>) => void) {
        const handle = imageRegistry.get(imageId);
        const image = useLayersStore.getState().images.find((i) => i.id === imageId);
        if (!handle || !image) {
          patch({ status: 'error', error: 'The image was removed.' });
          return;
        }
        patch({ status: 'running' });
        try {
          await models();
          const result = await runCaptionJob(
            {
              jobId,
              file: handle.file,
              fileName: image.name,
              imageKey: imageId,
              window: window ?? { x: 0, y: 0, width: image.info.width, height: image.info.height },
              instruction,
              task,
              beams: get().beamSearch ? CAPTION_BEAMS : 1,
            },
            (u) => patch({ ...(u.route ? { route: u.route } : {}), ...(u.text !== undefined ? { text: u.text } : {}) }),
          );
          patch({ status: result.stop === 'cancelled' ? 'stopped' : 'done', text: result.text, route: result.route, result, backend: captionBackend() });
        } catch (err) {
          patch({ status: 'error', error: (err as Error).message });
        }
      }

      return {
        autoCaption: true,
        parallelExperts: true,
        beamSearch: true,
        regionSize: 256,
        models: { status: 'idle', error: null, info: null },
        captions: {},
        ask: null,
        askMiss: null,
        history: {},

        setAutoCaption: (on) => set({ autoCaption: on }),
        setParallelExperts: (on) => set({ parallelExperts: on }),
        setBeamSearch: (on) => set({ beamSearch: on }),

        setRegionSize(size, controller) {
          set({ regionSize: size });
          const ask = get().ask;
          const image = ask && useLayersStore.getState().images.find((i) => i.id === ask.imageId);
          if (ask && image && controller) controller.showRegion(ask.imageId, regionWindow(image, ask.col, ask.row, size));
        },

        captionImage(imageId) {
          const image = useLayersStore.getState().images.find((i) => i.id === imageId);
          const current = get().captions[imageId];
          if (!image || current?.status === 'queued' || current?.status === 'running') return;
          const jobId = newJobId('caption');
          set((s) => ({ captions: { ...s.captions, [imageId]: { ...emptyJob(jobId), imageId, imageName: image.name } } }));
          const patch = (p: Partial<JobRecord>) => {
            if (get().captions[imageId]?.jobId === jobId) patchCaption(imageId, p);
          };
          queue.push({ jobId, run: () => execute(jobId, imageId, null, get().models.info?.captionInstruction ?? 'describe the image.', 'caption', patch), drop: () => patch({ status: 'stopped' }) });
          void pump();
        },

        stop(jobId) {
          const i = queue.findIndex((j) => j.jobId === jobId);
          if (i >= 0) queue.splice(i, 1)[0].drop();
          else if (running === jobId) void cancelCaptionJob(jobId);
        },

        openAskAt(controller, coordinate) {
          const hit = controller.imageAt(coordinate);
          if (!hit) {
            controller.showRegion(null);
            set({ ask: null, askMiss: { coordinate, message: 'No image here. Click inside a loaded image to ask about that spot.' } });
            return;
          }
          const image = useLayersStore.getState().images.find((i) => i.id === hit.imageId);
          if (!image) return;
          controller.showRegion(hit.imageId, regionWindow(image, hit.col, hit.row, get().regionSize));
          set({ askMiss: null, ask: { imageId: hit.imageId, imageName: image.name, col: hit.col, row: hit.row, lonLat: controller.pixelLonLat(hit.imageId, hit.col, hit.row), coordinate } });
        },

        closeAsk(controller) {
          controller.showRegion(null);
          set({ ask: null, askMiss: null });
        },

        async askQuestion(question) {
          const ask = get().ask;
          const image = ask && useLayersStore.getState().images.find((i) => i.id === ask.imageId);
          if (!ask || !image) return;
          const jobId = newJobId('ask');
          const window = regionWindow(image, ask.col, ask.row, get().regionSize);
          const record: QaRecord = {
            ...emptyJob(jobId),
            imageId: ask.imageId,
            question: question.replace(/\s+/g, ' ').trim(),
            window,
            point: { col: ask.col, row: ask.row },
            lonLat: ask.lonLat,
            askedAt: new Date().toISOString(),
            warnings: [],
          };
          set((s) => ({ history: { ...s.history, [ask.imageId]: [record, ...(s.history[ask.imageId] ?? [])].slice(0, HISTORY_PER_IMAGE) } }));
          const patch = (p: Partial<JobRecord>) => patchQa(ask.imageId, jobId, p);
          // Questions go before queued captions: the user is waiting for this one.
          await new Promise<void>((resolve) => {
            queue.unshift({
              jobId,
              run: async () => {
                await execute(jobId, ask.imageId, window, question, undefined, (p) => {
                  patch(p);
                  if (p.result) patchQa(ask.imageId, jobId, { warnings: p.result.warnings });
                });
                resolve();
              },
              drop: () => {
                patch({ status: 'stopped' });
                resolve();
              },
            });
            void pump();
          });
        },

        forgetImage(imageId) {
          for (const job of [...queue]) {
            if (job.jobId === get().captions[imageId]?.jobId || get().history[imageId]?.some((q) => q.jobId === job.jobId)) get().stop(job.jobId);
          }
          const runningHere = get().captions[imageId]?.jobId === running || get().history[imageId]?.some((q) => q.jobId === running);
          if (running && runningHere) void cancelCaptionJob(running);
          set((s) => {
            const captions = { ...s.captions };
            const history = { ...s.history };
            delete captions[imageId];
            delete history[imageId];
            return { captions, history, ask: s.ask?.imageId === imageId ? null : s.ask };
          });
        },

        exportJson() {
          const images = useLayersStore.getState().images;
          const nameOf = (id: string) => images.find((i) => i.id === id)?.name ?? id;
          const experts = (r: JobRecord) => r.result?.route.experts.map((e) => ({ index: e, role: get().models.info?.experts[e]?.role ?? `expert ${e}` })) ?? [];
          const doc = {
            exportedBy: 'RS Lens',
            exportedAt: new Date().toISOString(),
            captions: Object.values(get().captions)
              .filter((c) => c.status === 'done' || c.status === 'stopped')
              .map((c) => ({ file: c.imageName, caption: c.text, complete: c.status === 'done', experts: experts(c), parts: c.result?.parts ?? [], backend: c.backend, ms: c.result?.totalMs ?? null })),
            questions: Object.values(get().history)
              .flat()
              .filter((q) => q.status === 'done' || q.status === 'stopped')
              .map((q) => ({
                file: nameOf(q.imageId),
                location: { pixel: q.point, window: q.window, lonLat: q.lonLat },
                question: q.question,
                answer: q.text,
                task: q.result?.route.task ?? null,
                experts: experts(q),
                askedAt: q.askedAt,
                backend: q.backend,
              })),
          };
          download('rslens-captions.json', JSON.stringify(doc, null, 2), 'application/json');
        },
      };
    },
    {
      name: 'rslens-caption-settings',
      storage: createJSONStorage(() => localStorage),
      partialize: (s) => ({ autoCaption: s.autoCaption, parallelExperts: s.parallelExperts, beamSearch: s.beamSearch, regionSize: s.regionSize }),
    },
  ),
);

/** Captions new images as they are loaded (when the setting is on) and forgets removed ones. */
export function startAutoCaption(): () => void {
  let known = new Set(useLayersStore.getState().images.map((i) => i.id));
  return useLayersStore.subscribe((state) => {
    const ids = new Set(state.images.map((i) => i.id));
    for (const id of ids) if (!known.has(id) && useCaptionStore.getState().autoCaption) useCaptionStore.getState().captionImage(id);
    for (const id of known) if (!ids.has(id)) useCaptionStore.getState().forgetImage(id);
    known = ids;
  });
}
