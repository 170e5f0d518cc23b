import type { MapController } from '../../map/mapController';
import { useLayersStore } from '../layers/layersStore';
import { CaptionDetails } from './CaptionDetails';
import { CAPTION_BEAMS, useCaptionStore, type CaptionRecord, type QaRecord } from './captionStore';
import './caption.css';

const statusText: Record<string, string> = { queued: 'queued', running: 'writing…', done: '', stopped: 'stopped', error: 'error' };

function CaptionItem({ record, controller }: { record: CaptionRecord; controller: MapController }) {
  const s = useCaptionStore();
  const busy = record.status === 'queued' || record.status === 'running';
  return (
    <li
      className="caption-item"
      data-testid="caption-item"
      data-image-name={record.imageName}
      data-status={record.status}
      // Timings as data for the benchmarks (they read the app as a user sees it).
      data-encode-ms={record.result?.encodeMs}
      data-first-token-ms={record.result?.timings.firstTokenMs}
      data-decode-ms={record.result?.timings.decodeMs}
      data-total-ms={record.result?.totalMs}
      data-tokens={record.result?.tokens.length}
      data-expert-step-ms={record.result?.timings.msPerExpertStep.join(',')}
    >
      <div className="caption-head">
        <button className="link" onClick={() => controller.zoomTo(record.imageId)} title="Show on the map">
          {record.imageName}
        </button>
        <span className="hint" data-testid="caption-meta">
          {statusText[record.status]}
          {record.result && `${(record.result.totalMs / 1000).toFixed(2)} s · ${record.backend}`}
        </span>
        {busy ? (
          <button onClick={() => s.stop(record.jobId)} aria-label={`Stop captioning ${record.imageName}`}>
            Stop
          </button>
        ) : (
          <button onClick={() => s.captionImage(record.imageId)} aria-label={`Caption ${record.imageName} again`}>
            Again
          </button>
        )}
      </div>
      <p className="caption-text" data-testid="caption-text" aria-live="polite">
        {record.text || (record.status === 'running' ? '…' : '')}
      </p>
      {record.error && <p className="error">{record.error}</p>}
      <CaptionDetails route={record.route} result={record.result} info={s.models.info} instruction={s.models.info?.captionInstruction ?? ''} backend={record.backend} />
    </li>
  );
}

function QaItem({ record, imageName }: { record: QaRecord; imageName: string }) {
  const where = record.lonLat ? `${record.lonLat[1].toFixed(5)}°, ${record.lonLat[0].toFixed(5)}°` : `px ${Math.round(record.point.col)}, ${Math.round(record.point.row)}`;
  return (
    <li data-testid="qa-item" data-status={record.status}>
      <strong>{record.question}</strong> → <span data-testid="qa-answer">{record.text || (record.status === 'running' || record.status === 'queued' ? '…' : '')}</span>
      {record.error && <span className="error"> {record.error}</span>}
      <div className="hint">
        {imageName} · {where} · {record.window.width}×{record.window.height} px
      </div>
    </li>
  );
}

export function CaptionPanel({ controller }: { controller: MapController }) {
  const s = useCaptionStore();
  const images = useLayersStore((st) => st.images);
  const records = images.map((i) => s.captions[i.id]).filter((r): r is CaptionRecord => Boolean(r));
  const uncaptioned = images.filter((i) => !s.captions[i.id]);
  const questions = Object.values(s.history).flat();
  const nameOf = (id: string) => images.find((i) => i.id === id)?.name ?? id;
  const exportable = records.some((r) => r.status === 'done' || r.status === 'stopped') || questions.some((q) => q.status === 'done');

  return (
    <div className="caption-panel">
      <h3>Captions</h3>
      <label>
        <input type="checkbox" checked={s.autoCaption} onChange={(e) => s.setAutoCaption(e.target.checked)} /> Caption images when they are loaded
      </label>
      <label>
        <input type="checkbox" checked={s.beamSearch} onChange={(e) => s.setBeamSearch(e.target.checked)} /> Better captions (beam search, {CAPTION_BEAMS} beams; slower)
      </label>
      <label>
        <input type="checkbox" checked={s.parallelExperts} onChange={(e) => s.setParallelExperts(e.target.checked)} /> Run the experts in parallel workers
      </label>
      <p className="hint" role="status" data-testid="caption-models" data-status={s.models.status}>
        {s.models.status === 'loading' && 'Loading the caption models… '}
        {s.models.status === 'error' && <span className="error">{s.models.error}</span>}
        {images.length === 0 && 'Drop images on the map: each gets a caption. Click a spot on the map to ask about it.'}
      </p>
      {uncaptioned.length > 0 && (
        <button onClick={() => uncaptioned.forEach((i) => s.captionImage(i.id))}>
          Caption {uncaptioned.length} image{uncaptioned.length === 1 ? '' : 's'}
        </button>
      )}
      <ul className="caption-list">
        {records.map((r) => (
          <CaptionItem key={r.imageId} record={r} controller={controller} />
        ))}
      </ul>
      {questions.length > 0 && (
        <>
          <h3>Questions</h3>
          <ul className="qa-list">
            {questions.map((q) => (
              <QaItem key={q.jobId} record={q} imageName={nameOf(q.imageId)} />
            ))}
          </ul>
        </>
      )}
      <button onClick={() => s.exportJson()} disabled={!exportable}>
        Export captions and answers (JSON)
      </button>
    </div>
  );
}
