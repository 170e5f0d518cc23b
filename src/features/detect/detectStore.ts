/**
 * Detect slice: sliced detection of one loaded image (visible extent or whole image) in the
 * detect worker, boxes streamed onto the map's DetectionLayer tile by tile, then replaced by the
 * result merged across tile seams. Threshold and class toggles only filter what is drawn.
 */
import * as Comlink from 'comlink';
import { create } from 'zustand';
import { modelScaleFor, type DetectorSpec } from '../../core/detect/detectorSpec';
import { detectionsToGeoJson } from '../../core/detect/geojson';
import type { Detection } from '../../core/detect/types';
import type { PixelWindow } from '../../core/raster/types';
import { DetectionLayer } from '../../map/detectionLayer';
import type { MapController } from '../../map/mapController';
import { callModelWorker } from '../../workers/modelWorkers';
import type { DetectJobResult, DetectTileUpdate, DetectWorkerApi } from '../../workers/detectWorkerApi';
import { imageRegistry } from '../layers/imageRegistry';
import { useLayersStore, type LoadedImage } from '../layers/layersStore';
import { useModelsStore } from '../models/modelsStore';
import { download } from '../search/exportHits';

export const DETECTOR_ID = 'detector';
/** Lowest score inferred and lowest slider value: the slider filters without re-running. */
export const MIN_THRESHOLD = 0.05;
/** Smaller images cannot hold an object the detector sees (its finest stride is 4–8 px). */
export const MIN_IMAGE_SIDE = 8;

export type DetectScope = 'visible' | 'image';
export type DetectStatus = 'idle' | 'loading-model' | 'running' | 'done' | 'cancelled' | 'error';

export interface DetectProgress {
  done: number;
  total: number;
  startedAt: number;
  updatedAt: number;
}

export interface DetectRun {
  imageId: string;
  imageName: string;
  /** 'geo' or the image id of its pixel frame: where its boxes are drawn. */
  frame: string;
  scaleNote: string;
  /** Set when the run has finished (or was cancelled). */
  stats: Omit<DetectJobResult, 'detections'> | null;
}

interface DetectState {
  status: DetectStatus;
  message: string | null;
  scope: DetectScope;
  targetId: string | null;
  spec: DetectorSpec | null;
  run: DetectRun | null;
  detections: Detection[];
  progress: DetectProgress | null;
  threshold: number;
  hiddenClasses: number[];

  setScope(scope: DetectScope): void;
  setTarget(imageId: string | null): void;
  setThreshold(threshold: number): void;
  toggleClass(classIndex: number): void;
  detect(controller: MapController): Promise<void>;
  cancel(): Promise<void>;
  clear(controller: MapController): void;
  exportGeoJson(): void;
}

const layers = new WeakMap<MapController, DetectionLayer>();
/** The layer the last run drew on (to clear it when its image is removed). */
let drawnOn: DetectionLayer | null = null;

/** The controller's detection layer, created on first use. */
export function detectionLayerOf(controller: MapController): DetectionLayer {
  let layer = layers.get(controller);
  if (!layer) {
    layer = new DetectionLayer(controller);
    layers.set(controller, layer);
  }
  return layer;
}

/** The run whose results are accepted; null once cleared. */
let currentJob: string | null = null;

const stopJob = (job: string) => callModelWorker<void, DetectWorkerApi>('detect', (w) => w.cancel(job)).catch(() => {});

async function loadDetector(): Promise<DetectorSpec> {
  const models = useModelsStore.getState();
  if (!models.manifest) await models.init();
  const state = useModelsStore.getState();
  if (!state.manifest) throw new Error(state.manifestError ?? 'model manifest unavailable');
  if (!state.manifest.models.some((m) => m.id === DETECTOR_ID)) throw new Error(`No "${DETECTOR_ID}" model in models/manifest.json`);
  const loaded = await state.loadModel(DETECTOR_ID);
  if (!loaded) throw new Error(`Could not load the detector: ${useModelsStore.getState().models[DETECTOR_ID]?.error ?? 'unknown error'}`);
  return callModelWorker<DetectorSpec, DetectWorkerApi>('detect', (w) => w.detectorSpec(DETECTOR_ID));
}

/** The image to detect on: the chosen one if still loaded, else the one selected in Layers, else the last loaded. */
export function targetImage(targetId: string | null): LoadedImage | null {
  const { images, selectedId } = useLayersStore.getState();
  return images.find((i) => i.id === targetId) ?? images.find((i) => i.id === selectedId) ?? images[images.length - 1] ?? null;
}

/** Shown detections: above the threshold and of a class that is toggled on. */
export function shownDetections(s: Pick<DetectState, 'detections' | 'threshold' | 'hiddenClasses'>): Detection[] {
  return s.detections.filter((d) => d.score >= s.threshold && !s.hiddenClasses.includes(d.classIndex));
}

export const useDetectStore = create<DetectState>()((set, get) => {
  /** Pushes threshold/toggles to every layer (one per controller; the app has one). */
  let applyFilter: () => void = () => {};

  return {
    status: 'idle',
    message: null,
    scope: 'image',
    targetId: null,
    spec: null,
    run: null,
    detections: [],
    progress: null,
    threshold: 0.3,
    hiddenClasses: [],

    setScope: (scope) => set({ scope }),
    setTarget: (targetId) => set({ targetId }),
    setThreshold(threshold) {
      set({ threshold: Math.min(1, Math.max(MIN_THRESHOLD, threshold)) });
      applyFilter();
    },
    toggleClass(classIndex) {
      set((s) => ({ hiddenClasses: s.hiddenClasses.includes(classIndex) ? s.hiddenClasses.filter((c) => c !== classIndex) : [...s.hiddenClasses, classIndex] }));
      applyFilter();
    },

    async detect(controller) {
      if (get().status === 'running' || get().status === 'loading-model') return;
      const layer = detectionLayerOf(controller);
      drawnOn = layer;
      applyFilter = () => layer.setFilter(get().threshold, get().hiddenClasses);
      const image = targetImage(get().targetId);
      const handle = image && imageRegistry.get(image.id);
      if (!image || !handle) {
        set({ status: 'error', message: 'Load an image first: there is nothing to detect on.' });
        return;
      }
      const { width, height } = image.info;
      if (Math.min(width, height) < MIN_IMAGE_SIDE) {
        set({ status: 'error', message: `"${image.name}" is ${width}×${height} px: too small to hold objects the detector can see (needs at least ${MIN_IMAGE_SIDE}×${MIN_IMAGE_SIDE}).` });
        return;
      }
      let region: PixelWindow | undefined;
      if (get().scope === 'visible') {
        region = controller.visibleImageWindow(image.id) ?? undefined;
        if (!region) {
          set({ status: 'error', message: `"${image.name}" is not in view: zoom to it, or detect over the whole image.` });
          return;
        }
      }

      set({ status: 'loading-model', message: 'Loading the detector…' });
      let spec: DetectorSpec;
      try {
        spec = await loadDetector();
      } catch (err) {
        set({ status: 'error', message: (err as Error).message });
        return;
      }
      layer.setClasses(spec.classes);
      const { scale, note } = modelScaleFor(image.info.pixelSizeMetres, spec.groundResolution);
      const frame = image.kind === 'georeferenced' ? 'geo' : image.id;
      const job = `detect-${Date.now()}`;
      currentJob = job;
      layer.clear();
      applyFilter();
      const now = performance.now();
      set({
        status: 'running',
        message: null,
        spec,
        detections: [],
        run: { imageId: image.id, imageName: image.name, frame, scaleNote: note, stats: null },
        progress: { done: 0, total: 0, startedAt: now, updatedAt: now },
      });

      const onTile = Comlink.proxy((update: DetectTileUpdate) => {
        if (currentJob !== job) return;
        layer.add(image.id, frame, update.detections);
        set((s) => ({ detections: [...s.detections, ...update.detections], progress: s.progress && { ...s.progress, done: update.done, total: update.total, updatedAt: performance.now() } }));
      });
      try {
        const result = await callModelWorker<DetectJobResult, DetectWorkerApi>('detect', (w) =>
          w.detect(DETECTOR_ID, handle.file, image.name, { region, scale, conf: MIN_THRESHOLD }, job, onTile),
        );
        if (currentJob !== job) return; // cleared, or the image was removed
        const { detections, ...stats } = result;
        if (imageRegistry.get(image.id)) layer.replace(image.id, frame, detections);
        const noData = stats.tilesRun === 0 && stats.tilesNoData > 0;
        set((s) => ({
          status: result.cancelled ? 'cancelled' : 'done',
          detections,
          run: s.run && { ...s.run, stats },
          message: result.cancelled
            ? `Cancelled after ${stats.tilesRun + stats.tilesNoData} of ${stats.tiles} tiles: the boxes of finished tiles are kept (Clear removes them).`
            : noData
              ? 'No valid pixels: every tile is nodata or transparent, so there is nothing to detect.'
              : null,
        }));
        currentJob = null;
      } catch (err) {
        if (currentJob === job) currentJob = null;
        layer.clear(image.id);
        set({ status: 'error', detections: [], message: `Detection failed: ${(err as Error).message}` });
      }
    },

    async cancel() {
      // The run stops after its current tile and reports as cancelled, keeping finished tiles.
      if (currentJob) {
        set({ message: 'Cancelling after the current tile…' });
        await stopJob(currentJob);
      }
    },

    clear(controller) {
      const running = currentJob;
      currentJob = null; // its late results are ignored
      if (running) void stopJob(running);
      detectionLayerOf(controller).clear();
      set({ detections: [], run: null, progress: null, status: 'idle', message: running ? 'Cleared; the run in progress was stopped.' : null });
    },

    exportGeoJson() {
      const { run, spec } = get();
      if (!run || !spec) return;
      const image = useLayersStore.getState().images.find((i) => i.id === run.imageId);
      const collection = detectionsToGeoJson(shownDetections(get()), spec.classes, image?.info.geo ?? null, run.imageName);
      const base = run.imageName.replace(/\.[^.]+$/, '');
      download(`${base}-detections.geojson`, JSON.stringify(collection), 'application/geo+json');
    },
  };
});

// Boxes of an image removed from the map go with it.
useLayersStore.subscribe((state, previous) => {
  if (state.images === previous.images) return;
  const run = useDetectStore.getState().run;
  if (run && !state.images.some((i) => i.id === run.imageId)) {
    if (currentJob) void stopJob(currentJob);
    currentJob = null;
    drawnOn?.clear(run.imageId);
    useDetectStore.setState({ detections: [], run: null, progress: null, status: 'idle', message: null });
  }
});
