/**
 * Search slice: an index of embeddings over the loaded images (whole images, or tiles of big
 * ones), persisted per file content and model version, and queries ranked against it: a text
 * (text tower), or an example image: an indexed item ("Similar") or a region picked on the map,
 * both image → image in the same space.
 */
import * as Comlink from 'comlink';
import { create } from 'zustand';
import { findModel } from '../../core/models/manifest';
import { planTiles } from '../../core/raster/tiler';
import type { PixelWindow } from '../../core/raster/types';
import { HUBNESS, IMAGE_TOWER, TEXT_TOWER } from '../../core/retrieval/modelIds';
import type { TextCoverage } from '../../core/text/tokenizer';
import { otherPlaces, rowOf, topK, type Hit } from '../../core/retrieval/rank';
import { contentHash } from '../../io/contentHash';
import { callModelWorker } from '../../workers/modelWorkers';
import type { SearchWorkerApi } from '../../workers/searchWorkerApi';
import { imageRegistry } from '../layers/imageRegistry';
import { useLayersStore, type LoadedImage } from '../layers/layersStore';
import { useModelsStore } from '../models/modelsStore';
import { cacheKey, vectorCache, type CachedVectors } from './vectorCache';

export const MAX_QUERY_CHARS = 1000;
/** Hits a query shows at first, and how many more each "Show more" adds. */
export const RESULT_COUNT = 20;

/** One indexed item: a whole image or one tile of it. */
export interface IndexedItem {
  imageId: string;
  fileName: string;
  window: PixelWindow;
  /** Tile position for display, or null for a whole image. */
  tile: { col: number; row: number } | null;
}

export interface SearchHit {
  item: IndexedItem;
  score: number;
}

/** The example of an image → image query: an indexed item, or a region picked on the map. */
export interface ExampleQuery {
  kind: 'item' | 'region';
  source: IndexedItem;
  /** Its embedding, kept so the query can be answered again over a rebuilt index. */
  vector: Float32Array;
}

export interface IndexProgress {
  done: number;
  total: number;
  startedAt: number;
  /** When `done` last changed (performance.now()), for the rate and ETA. */
  updatedAt: number;
  /** Windows embedded by the model in this run (cached ones excluded). */
  embedded: number;
  /** Windows restored from IndexedDB in this run. */
  restored: number;
}

export type IndexStatus = 'idle' | 'loading-models' | 'indexing' | 'ready' | 'cancelled' | 'error';

interface SearchState {
  status: IndexStatus;
  message: string | null;
  items: IndexedItem[];
  vectors: Float32Array;
  dim: number;
  /** Per row of `vectors`: what a text query's score loses (hubness penalty; image → image queries ignore it). */
  penalties: Float32Array;
  progress: IndexProgress | null;
  skipped: { fileName: string; reason: string }[];
  /** Tile side in full-res pixels for images larger than 1.5 tiles; overlap in pixels. */
  tileSize: number;
  overlap: number;
  query: string;
  /** The example of the last image → image query, or null when the hits answer the text query. */
  example: ExampleQuery | null;
  hits: SearchHit[];
  /** How many hits the current query asks for (RESULT_COUNT, more after "Show more"). */
  resultCount: number;
  /** The embedding of the last text query, kept so "Show more" needs no second model run. */
  textVector: Float32Array | null;
  /** embed is null for a "Similar" query: its vector is already in the index. */
  timings: { embed: { what: 'text' | 'region'; ms: number } | null; rankMs: number } | null;
  queryNote: string | null;

  setTiling(tileSize: number, overlap: number): void;
  buildIndex(): Promise<void>;
  cancel(): Promise<void>;
  search(query: string): Promise<void>;
  /** Ranks the index by likeness to an indexed item (not itself, nor tiles overlapping it). */
  findSimilar(item: IndexedItem): void;
  /** Embeds a window of a loaded image and ranks the index by likeness to it (nothing overlapping it). */
  findLikeRegion(imageId: string, window: PixelWindow): Promise<void>;
  /** Extends the current query's hits by RESULT_COUNT more (no model run). */
  showMore(): void;
  forgetImage(imageId: string): void;
}

let currentJob: string | null = null;

/** Windows to embed for an image: the whole image, or overlapping tiles of a big one. */
export function windowsFor(image: LoadedImage, tileSize: number, overlap: number): { window: PixelWindow; tile: IndexedItem['tile'] }[] {
  const { width, height } = image.info;
  if (Math.max(width, height) <= tileSize * 1.5) return [{ window: { x: 0, y: 0, width, height }, tile: null }];
  return planTiles(width, height, { tileSize, overlap }).tiles.map((t) => ({ window: t.window, tile: { col: t.col, row: t.row } }));
}

/**
 * Loads both towers and the hubness model (once: later calls find them ready); returns the image
 * tower's version key (what stored vectors depend on) and the hubness model's (what stored penalties depend on).
 */
async function loadTowers(): Promise<{ modelKey: string; hubnessKey: string }> {
  const models = useModelsStore.getState();
  if (!models.manifest) await models.init();
  const manifest = useModelsStore.getState().manifest;
  if (!manifest) throw new Error(useModelsStore.getState().manifestError ?? 'model manifest unavailable');
  for (const id of [IMAGE_TOWER, TEXT_TOWER, HUBNESS]) {
    const loaded = await useModelsStore.getState().ensureLoaded(id);
    if (!loaded) throw new Error(`Could not load model "${id}": ${useModelsStore.getState().models[id]?.error ?? 'unknown error'}`);
  }
  const key = (id: string) => {
    const entry = findModel(manifest, id);
    return `${entry.id}@${entry.version}`;
  };
  return { modelKey: key(IMAGE_TOWER), hubnessKey: key(HUBNESS) };
}

/** The cached record with penalties from the current hubness model (computed from its vectors when missing or stale: no re-embedding). */
async function withPenalties(cached: CachedVectors, hubnessKey: string): Promise<{ record: CachedVectors; changed: boolean }> {
  const rows = cached.vectors.length / Math.max(cached.dim, 1);
  if (cached.penaltyModel === hubnessKey && cached.penalties?.length === rows) return { record: cached, changed: false };
  const penalties = await callModelWorker<Float32Array, SearchWorkerApi>('search', (w) => w.hubnessPenalties(HUBNESS, cached.vectors, cached.dim));
  return { record: { ...cached, penalties, penaltyModel: hubnessKey }, changed: true };
}

const quoted = (words: string[], max = 8) =>
  words.slice(0, max).map((w) => `"${w}"`).join(', ') + (words.length > max ? ` and ${words.length - max} more` : '');

/** Why a query whose every word is outside the vocabulary gets no hits. */
export function nothingReadable(coverage: TextCoverage): string {
  return `The search model does not know ${quoted(coverage.unknownWords)}: its vocabulary is the words of aerial-image captions (RSICD), so there is nothing to rank by. Describe the scene instead, e.g. "storage tanks beside a river".`;
}

/** What the model could not read of a query it still answered, or null. */
export function coverageNote(coverage: TextCoverage): string | null {
  const parts: string[] = [];
  if (coverage.unknownWords.length) parts.push(`Not in the search model's vocabulary (read as an unknown word): ${quoted(coverage.unknownWords)}.`);
  if (coverage.ignoredWords.length) parts.push(`The model reads only the first few dozen word pieces; it did not read the last ${coverage.ignoredWords.length} word${coverage.ignoredWords.length > 1 ? 's' : ''} (from "${coverage.ignoredWords[0]}").`);
  return parts.length ? parts.join(' ') : null;
}

/** "airport_1.jpg" or "scene.tif tile 3,2": how a hit is named in notes and labels. */
export function itemLabel(item: IndexedItem): string {
  return item.tile ? `${item.fileName} tile ${item.tile.col},${item.tile.row}` : item.fileName;
}

/** How the example of an image → image query is named: a region by its pixel window. */
export function exampleLabel(example: ExampleQuery): string {
  if (example.kind === 'item') return itemLabel(example.source);
  const { x, y, width, height } = example.source.window;
  return `the ${width}×${height} px region of ${example.source.fileName} at pixel ${x},${y}`;
}

/** Ranked rows of the index as hits. */
function hitsOf(items: readonly IndexedItem[], ranked: readonly Hit[]): SearchHit[] {
  return ranked.map((h) => ({ item: items[h.index], score: h.score }));
}

function appendVectors(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

export const useSearchStore = create<SearchState>()((set, get) => ({
  status: 'idle',
  message: null,
  items: [],
  vectors: new Float32Array(0),
  dim: 0,
  penalties: new Float32Array(0),
  progress: null,
  skipped: [],
  tileSize: 512,
  overlap: 64,
  query: '',
  example: null,
  hits: [],
  resultCount: RESULT_COUNT,
  textVector: null,
  timings: null,
  queryNote: null,

  setTiling(tileSize, overlap) {
    set({ tileSize: Math.max(64, Math.round(tileSize)), overlap: Math.max(0, Math.min(Math.round(overlap), Math.round(tileSize / 2))) });
  },

  async buildIndex() {
    if (get().status === 'indexing' || get().status === 'loading-models') return;
    const images = useLayersStore.getState().images;
    if (images.length === 0) {
      set({ status: 'error', message: 'Load some images first: there is nothing to index.' });
      return;
    }
    const { tileSize, overlap } = get();
    const tiling = `t${tileSize}o${overlap}`;
    set({ status: 'loading-models', message: 'Loading the retrieval models…', skipped: [], hits: [] });
    let modelKey: string;
    let hubnessKey: string;
    try {
      ({ modelKey, hubnessKey } = await loadTowers());
      await vectorCache.pruneOtherModels(modelKey);
    } catch (err) {
      set({ status: 'error', message: (err as Error).message });
      return;
    }

    const plans = images.map((image) => ({ image, windows: windowsFor(image, tileSize, overlap) }));
    const total = plans.reduce((n, p) => n + p.windows.length, 0);
    const job = `index-${Date.now()}`;
    currentJob = job;
    // Rebuild from scratch: items and vectors stay aligned row for row.
    set({ status: 'indexing', message: null, items: [], vectors: new Float32Array(0), dim: 0, penalties: new Float32Array(0), progress: { done: 0, total, startedAt: performance.now(), updatedAt: performance.now(), embedded: 0, restored: 0 } });
    const bump = (patch: Partial<IndexProgress>) => set((s) => ({ progress: s.progress && { ...s.progress, ...patch, updatedAt: performance.now() } }));

    for (const { image, windows } of plans) {
      if (currentJob !== job) break;
      const handle = imageRegistry.get(image.id);
      if (!handle) continue; // removed meanwhile
      const base = get().progress!.done;
      try {
        const key = cacheKey(modelKey, await contentHash(handle.file), tiling);
        let cached = await vectorCache.get(key);
        const fromCache = !!cached && cached.windows.length === windows.length;
        if (!fromCache) {
          const onProgress = Comlink.proxy((done: number) => bump({ done: base + done }));
          const result = await callModelWorker<Awaited<ReturnType<SearchWorkerApi['embedWindows']>>, SearchWorkerApi>('search', (w) =>
            w.embedWindows(IMAGE_TOWER, handle.file, image.name, windows.map((p) => p.window), job, onProgress),
          );
          if (result.cancelled) break;
          cached = { windows: windows.map((p) => p.window), vectors: result.vectors, dim: result.dim };
        }
        const { record, changed } = await withPenalties(cached!, hubnessKey);
        cached = record;
        if (changed) await vectorCache.set(key, cached);
        if (currentJob !== job || !imageRegistry.get(image.id)) continue;
        const items = windows.map((p) => ({ imageId: image.id, fileName: image.name, window: p.window, tile: p.tile }));
        set((s) => ({ items: [...s.items, ...items], vectors: appendVectors(s.vectors, cached!.vectors), penalties: appendVectors(s.penalties, cached!.penalties!), dim: cached!.dim }));
        const p = get().progress!;
        bump({
          done: base + windows.length,
          embedded: p.embedded + (fromCache ? 0 : windows.length),
          restored: p.restored + (fromCache ? windows.length : 0),
        });
      } catch (err) {
        set((s) => ({ skipped: [...s.skipped, { fileName: image.name, reason: (err as Error).message }] }));
        bump({ done: base + windows.length });
      }
    }
    const cancelled = currentJob !== job;
    if (!cancelled) currentJob = null;
    set({ status: cancelled ? 'cancelled' : 'ready' });
    // Answer the last query again over the new index.
    const example = get().example;
    if (example && imageRegistry.get(example.source.imageId)) rankByExample(example, null);
    else if (get().query) await get().search(get().query);
  },

  async cancel() {
    const job = currentJob;
    if (!job) return;
    currentJob = null;
    await callModelWorker<void, SearchWorkerApi>('search', (w) => w.cancel(job)).catch(() => {});
    set({ status: 'cancelled', message: 'Indexing cancelled: the images finished so far stay searchable.' });
  },

  async search(query) {
    const trimmed = query.trim();
    set({ query, example: null, textVector: null, resultCount: RESULT_COUNT });
    if (!trimmed) {
      set({ hits: [], queryNote: 'Type what to look for, e.g. "storage tanks beside a river".', timings: null });
      return;
    }
    if (get().items.length === 0) {
      set({ hits: [], queryNote: 'Index the loaded images first.', timings: null });
      return;
    }
    const text = trimmed.slice(0, MAX_QUERY_CHARS);
    const note = trimmed.length > MAX_QUERY_CHARS ? `Query cut to its first ${MAX_QUERY_CHARS} characters (the model reads at most a few dozen words).` : null;
    try {
      await loadTowers();
      const embedded = await callModelWorker<Awaited<ReturnType<SearchWorkerApi['embedTexts']>>, SearchWorkerApi>('search', (w) => w.embedTexts(TEXT_TOWER, [text]));
      const coverage = embedded.coverage[0];
      if (coverage && coverage.knownWordCount === 0 && coverage.unknownWords.length > 0) {
        // Nothing the model can read: any ranking would be noise dressed up as scores.
        set({ hits: [], textVector: null, timings: null, queryNote: nothingReadable(coverage) });
        return;
      }
      const { vectors, dim, items, penalties } = get();
      const t0 = performance.now();
      const ranked = topK(vectors, dim, embedded.vectors, RESULT_COUNT, undefined, penalties);
      const rankMs = performance.now() - t0;
      const notes = [note, coverage && coverageNote(coverage)].filter(Boolean).join(' ');
      set({ hits: hitsOf(items, ranked), textVector: embedded.vectors, timings: { embed: { what: 'text', ms: embedded.ms }, rankMs }, queryNote: notes || null });
    } catch (err) {
      set({ hits: [], queryNote: `Search failed: ${(err as Error).message}`, timings: null });
    }
  },

  findSimilar(item) {
    const { items, vectors, dim } = get();
    const row = items.indexOf(item);
    if (row < 0) {
      set({ queryNote: `${itemLabel(item)} is no longer in the index.` });
      return;
    }
    set({ resultCount: RESULT_COUNT });
    rankByExample({ kind: 'item', source: item, vector: rowOf(vectors, dim, row).slice() }, null);
  },

  async findLikeRegion(imageId, window) {
    const image = useLayersStore.getState().images.find((i) => i.id === imageId);
    const handle = imageRegistry.get(imageId);
    if (!image || !handle) return;
    const source: IndexedItem = { imageId, fileName: image.name, window, tile: null };
    const example: ExampleQuery = { kind: 'region', source, vector: new Float32Array(0) };
    if (get().items.length === 0) {
      set({ hits: [], example: null, timings: null, queryNote: 'Index the loaded images first (Search panel), then look for places like this region.' });
      return;
    }
    set({ example: null, resultCount: RESULT_COUNT, queryNote: `Embedding ${exampleLabel(example)}…` });
    try {
      await loadTowers();
      const t0 = performance.now();
      const result = await callModelWorker<Awaited<ReturnType<SearchWorkerApi['embedWindows']>>, SearchWorkerApi>('search', (w) =>
        w.embedWindows(IMAGE_TOWER, handle.file, image.name, [window], `region-${Date.now()}`),
      );
      if (!imageRegistry.get(imageId)) return; // removed meanwhile
      rankByExample({ ...example, vector: result.vectors }, performance.now() - t0);
    } catch (err) {
      set({ hits: [], example: null, timings: null, queryNote: `Search failed: ${(err as Error).message}` });
    }
  },

  showMore() {
    const { example, textVector, items, vectors, dim, penalties, resultCount } = get();
    set({ resultCount: resultCount + RESULT_COUNT });
    if (example) return rankByExample(example, null);
    if (!textVector) return;
    const ranked = topK(vectors, dim, textVector, resultCount + RESULT_COUNT, undefined, penalties);
    set({ hits: hitsOf(items, ranked) });
  },

  forgetImage(imageId) {
    const { items, vectors, dim, penalties } = get();
    const keep = items.map((item, i) => (item.imageId === imageId ? -1 : i)).filter((i) => i >= 0);
    if (keep.length === items.length) return;
    const next = new Float32Array(keep.length * dim);
    keep.forEach((row, i) => next.set(rowOf(vectors, dim, row), i * dim));
    const nextPenalties = Float32Array.from(keep, (row) => penalties[row]);
    set((s) => {
      const sourceGone = s.example?.source.imageId === imageId;
      return {
        items: keep.map((i) => items[i]),
        vectors: next,
        penalties: nextPenalties,
        hits: sourceGone ? [] : s.hits.filter((h) => h.item.imageId !== imageId),
        example: sourceGone ? null : s.example,
        queryNote: sourceGone ? 'The image of the image → image query was removed.' : s.queryNote,
      };
    });
  },
}));

/** Ranks the index by likeness to an example; embedMs is the time to embed a region (null: none needed). */
function rankByExample(example: ExampleQuery, embedMs: number | null): void {
  const { items, vectors, dim } = useSearchStore.getState();
  const t0 = performance.now();
  const ranked = topK(vectors, dim, example.vector, useSearchStore.getState().resultCount, otherPlaces(items, example.source));
  const rankMs = performance.now() - t0;
  const label = exampleLabel(example);
  useSearchStore.setState({
    example,
    hits: hitsOf(items, ranked),
    timings: { embed: embedMs === null ? null : { what: 'region', ms: embedMs }, rankMs },
    queryNote: ranked.length ? `Most like ${label} (image → image).` : `Nothing else in the index to compare ${label} with.`,
  });
}

// Images removed from the map leave the index too.
useLayersStore.subscribe((state, previous) => {
  if (state.images === previous.images) return;
  const present = new Set(state.images.map((i) => i.id));
  for (const image of previous.images) if (!present.has(image.id)) useSearchStore.getState().forgetImage(image.id);
});
