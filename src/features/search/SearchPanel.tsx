import { useEffect, useState } from 'react';
import { readRgbaWindow } from '../../core/raster/readWindow';
import { windowKey } from '../../core/raster/types';
import { rgbaToObjectUrl } from '../../io/rgbaImageUrl';
import { HitOutlineLayer } from '../../map/hitOutlineLayer';
import type { MapController } from '../../map/mapController';
import { imageRegistry } from '../layers/imageRegistry';
import { useLayersStore } from '../layers/layersStore';
import { download, exportRows, toCsv } from './exportHits';
import { itemLabel, MAX_QUERY_CHARS, RESULT_COUNT, useSearchStore, type SearchHit } from './searchStore';

const THUMB = 96;

const outlineLayers = new WeakMap<MapController, HitOutlineLayer>();

/** The controller's search-hit layer, created on first use. */
function outlineLayerOf(controller: MapController): HitOutlineLayer {
  let layer = outlineLayers.get(controller);
  if (!layer) {
    layer = new HitOutlineLayer(controller);
    outlineLayers.set(controller, layer);
  }
  return layer;
}

/** Keeps the hits outlined on the map while `enabled`; returns how many show in the current frame. */
function useHitOutlines(controller: MapController, hits: readonly SearchHit[], enabled: boolean): number {
  useEffect(() => {
    outlineLayerOf(controller).show(enabled ? hits.map((h) => ({ imageId: h.item.imageId, window: h.item.window, score: h.score })) : []);
  }, [controller, hits, enabled]);
  useEffect(() => () => outlineLayerOf(controller).show([]), [controller]);
  // Outlines show only in their image's frame: re-render when the map changes frame.
  const [frame, setFrame] = useState(() => controller.currentFrame());
  useEffect(() => controller.onFrameChange(setFrame), [controller]);
  return enabled ? hits.filter((h) => controller.frameOf(h.item.imageId) === frame).length : 0;
}

/** A small picture of a hit's window, read from the loaded image itself. */
function HitThumbnail({ hit }: { hit: SearchHit }) {
  const [url, setUrl] = useState<string | null>(null);
  useEffect(() => {
    let alive = true;
    let made: string | null = null;
    const handle = imageRegistry.get(hit.item.imageId);
    if (!handle) return;
    const { width, height } = hit.item.window;
    const scale = THUMB / Math.max(width, height);
    const w = Math.max(1, Math.round(width * scale));
    const h = Math.max(1, Math.round(height * scale));
    void readRgbaWindow(handle.source, hit.item.window, w, h).then(async (rgba) => {
      made = await rgbaToObjectUrl(rgba);
      if (alive) setUrl(made);
      else URL.revokeObjectURL(made);
    });
    return () => {
      alive = false;
      if (made) URL.revokeObjectURL(made);
    };
  }, [hit]);
  return url ? <img src={url} alt={hit.item.fileName} /> : <div className="thumb-placeholder" />;
}

function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds)) return '–';
  if (seconds < 90) return `${Math.round(seconds)} s`;
  return `${Math.round(seconds / 60)} min`;
}

function IndexProgressView() {
  const progress = useSearchStore((s) => s.progress);
  const status = useSearchStore((s) => s.status);
  if (!progress) return null;
  const elapsed = (progress.updatedAt - progress.startedAt) / 1000;
  const rate = progress.done / Math.max(elapsed, 1e-3);
  const eta = (progress.total - progress.done) / rate;
  return (
    <div className="index-progress" data-testid="index-progress" data-done={progress.done} data-total={progress.total} data-embedded={progress.embedded} data-restored={progress.restored}>
      <progress max={progress.total} value={progress.done} />
      <div className="hint">
        {progress.done}/{progress.total} · {rate.toFixed(1)} images/s
        {status === 'indexing' && ` · ETA ${formatEta(eta)}`}
        {progress.restored > 0 && ` · ${progress.restored} restored from the saved index`}
      </div>
    </div>
  );
}

/** Loaded images neither in the index nor skipped by the last run (it failed to read them). */
function countNotIndexed(images: readonly { id: string; name: string }[], items: readonly { imageId: string }[], skipped: readonly { fileName: string }[]): number {
  const indexed = new Set(items.map((item) => item.imageId));
  const failed = new Set(skipped.map((k) => k.fileName));
  return images.filter((im) => !indexed.has(im.id) && !failed.has(im.name)).length;
}

export function SearchPanel({ controller }: { controller: MapController }) {
  const s = useSearchStore();
  const images = useLayersStore((st) => st.images);
  const [draft, setDraft] = useState(s.query);
  const [outline, setOutline] = useState(true);
  const outlined = useHitOutlines(controller, s.hits, outline);
  const busy = s.status === 'indexing' || s.status === 'loading-models';
  // Images dropped after the last index run are not searchable until the next one (which restores
  // the already indexed ones from the saved index): say so rather than silently leave them out.
  const notIndexed = busy || s.items.length === 0 ? 0 : countNotIndexed(images, s.items, s.skipped);

  const exportAs = (kind: 'csv' | 'json') => {
    const rows = exportRows(s.hits, images);
    if (kind === 'csv') download('rslens-search.csv', toCsv(rows), 'text/csv');
    else {
      // An image → image query is described by its example's window (the same fields as a result, without a score).
      const source = s.example && (({ score: _score, ...where }) => where)(exportRows([{ item: s.example.source, score: 0 }], images)[0]);
      const query = source ? { similarTo: source, example: s.example!.kind } : s.query;
      download('rslens-search.json', JSON.stringify({ query, results: rows }, null, 2), 'application/json');
    }
  };

  return (
    <div className="search-panel">
      <h3>Index</h3>
      <div className="field-row">
        <label>
          Tile px
          <input type="number" min={64} step={64} value={s.tileSize} disabled={busy} onChange={(e) => s.setTiling(Number(e.target.value), s.overlap)} />
        </label>
        <label>
          Overlap px
          <input type="number" min={0} step={16} value={s.overlap} disabled={busy} onChange={(e) => s.setTiling(s.tileSize, Number(e.target.value))} />
        </label>
      </div>
      <p className="hint">Images larger than 1.5 tiles are indexed as overlapping tiles; smaller ones whole.</p>
      <div className="button-row">
        <button onClick={() => void s.buildIndex()} disabled={busy}>
          Index {images.length} image{images.length === 1 ? '' : 's'}
        </button>
        <button onClick={() => void s.cancel()} disabled={s.status !== 'indexing'}>
          Cancel
        </button>
      </div>
      <div className="hint" data-testid="index-status" data-status={s.status}>
        {s.status === 'loading-models' && 'Loading the retrieval models…'}
        {s.status === 'ready' && `Index ready: ${s.items.length} item${s.items.length === 1 ? '' : 's'}.`}
        {s.status === 'cancelled' && `Cancelled: ${s.items.length} items searchable.`}
        {s.message && ` ${s.message}`}
      </div>
      <IndexProgressView />
      {notIndexed > 0 && (
        <p className="hint" role="status" data-testid="index-missing" data-count={notIndexed}>
          {notIndexed} loaded image{notIndexed === 1 ? ' is' : 's are'} not in the index yet: index again to add{' '}
          {notIndexed === 1 ? 'it' : 'them'} (images already indexed are restored, not embedded again).
        </p>
      )}
      {s.skipped.length > 0 && (
        <ul className="problems" aria-label="Skipped images">
          <li role="status">
            {s.skipped.length} image{s.skipped.length === 1 ? '' : 's'} skipped:
            {s.skipped.map((k) => (
              <div key={k.fileName}>
                <strong>{k.fileName}</strong>: {k.reason}
              </div>
            ))}
          </li>
        </ul>
      )}

      <h3>Search</h3>
      <form
        className="query-row"
        onSubmit={(e) => {
          e.preventDefault();
          void s.search(draft);
        }}
      >
        <input
          type="search"
          aria-label="Search query"
          placeholder="e.g. storage tanks beside a river"
          value={draft}
          maxLength={MAX_QUERY_CHARS * 10}
          onChange={(e) => setDraft(e.target.value)}
        />
        <button type="submit" disabled={busy}>
          Search
        </button>
      </form>
      {s.queryNote && (
        <p className="hint" data-testid="query-note">
          {s.queryNote}
          {s.example && (
            <>
              {' '}
              <button className="link" data-testid="show-example" onClick={() => controller.focusWindow(s.example!.source.imageId, s.example!.source.window)}>
                Show it on the map
              </button>
            </>
          )}
        </p>
      )}
      {s.timings && (
        <p className="hint" data-testid="search-timings">
          {s.timings.embed && `${s.timings.embed.what} ${s.timings.embed.ms.toFixed(0)} ms · `}ranking {s.items.length} vectors {s.timings.rankMs.toFixed(1)} ms
        </p>
      )}
      {s.hits.length > 0 && (
        <>
          <div className="button-row">
            <button onClick={() => exportAs('csv')}>Export CSV</button>
            <button onClick={() => exportAs('json')}>Export JSON</button>
          </div>
          <label className="hint" data-testid="hit-outlines" data-count={outline ? outlined : 0}>
            <input type="checkbox" checked={outline} onChange={(e) => setOutline(e.target.checked)} /> Outline the hits on the map, numbered by rank
            {outline && s.hits.length > 0 && ` (${outlined} in this view${outlined < s.hits.length ? '; the others are pictures with their own frame' : ''})`}
          </label>
          <ol className="hits" aria-label="Search results">
            {s.hits.map((hit, i) => (
              <li
                key={i}
                data-testid="search-hit"
                data-file={hit.item.fileName}
                data-image-id={hit.item.imageId}
                data-window={windowKey(hit.item.window)}
                data-score={hit.score.toFixed(4)}
              >
                <div
                  className="hit-main"
                  role="button"
                  tabIndex={0}
                  aria-label={`Show ${itemLabel(hit.item)} on the map (score ${hit.score.toFixed(3)})`}
                  onClick={() => controller.focusWindow(hit.item.imageId, hit.item.window)}
                  onKeyDown={(e) => {
                    if (e.key !== 'Enter' && e.key !== ' ') return;
                    e.preventDefault();
                    controller.focusWindow(hit.item.imageId, hit.item.window);
                  }}
                >
                  <HitThumbnail hit={hit} />
                  <div>
                    <div className="layer-name">{hit.item.fileName}</div>
                    <div
                      className="layer-meta"
                      title={s.example ? 'Score: cosine similarity to the example image' : "Score: cosine similarity to the query, minus this image's hubness penalty (images that match many captions rank lower for text)"}
                    >
                      {hit.item.tile ? `tile ${hit.item.tile.col},${hit.item.tile.row}` : 'whole image'} · score {hit.score.toFixed(3)}
                    </div>
                  </div>
                </div>
                <button className="hit-similar" title="Rank the index by likeness to this image" aria-label={`Find images like ${itemLabel(hit.item)}`} onClick={() => s.findSimilar(hit.item)}>
                  Similar
                </button>
              </li>
            ))}
          </ol>
          {s.hits.length === s.resultCount && s.hits.length < s.items.length && (
            <button className="more-hits" data-testid="more-hits" onClick={() => s.showMore()}>
              Show {RESULT_COUNT} more
            </button>
          )}
        </>
      )}
    </div>
  );
}
