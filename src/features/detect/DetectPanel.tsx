import type { MapController } from '../../map/mapController';
import { classColour } from '../../map/detectionLayer';
import { useLayersStore } from '../layers/layersStore';
import { MIN_THRESHOLD, shownDetections, targetImage, useDetectStore } from './detectStore';
import './detect.css';

function ProgressView() {
  const progress = useDetectStore((s) => s.progress);
  const status = useDetectStore((s) => s.status);
  if (!progress || progress.total === 0) return null;
  const seconds = (progress.updatedAt - progress.startedAt) / 1000;
  const rate = progress.done / Math.max(seconds, 1e-3);
  return (
    <div data-testid="detect-progress" data-done={progress.done} data-total={progress.total}>
      <progress max={progress.total} value={progress.done} />
      <div className="hint">
        {progress.done}/{progress.total} tiles · {rate.toFixed(1)} tiles/s
        {status === 'running' && rate > 0 && ` · ETA ${Math.ceil((progress.total - progress.done) / rate)} s`}
      </div>
    </div>
  );
}

export function DetectPanel({ controller }: { controller: MapController }) {
  const s = useDetectStore();
  const images = useLayersStore((st) => st.images);
  // Re-read the default target when the Layers selection changes.
  useLayersStore((st) => st.selectedId);
  const target = targetImage(s.targetId);
  const busy = s.status === 'running' || s.status === 'loading-model';
  const shown = shownDetections(s);
  const classes = s.spec?.classes ?? [];
  const counts = classes.map((_, c) => s.detections.filter((d) => d.classIndex === c && d.score >= s.threshold).length);

  return (
    <div className="detect-panel">
      <h3>Detect objects</h3>
      <label>
        Image{' '}
        <select aria-label="Image to detect on" value={target?.id ?? ''} disabled={busy || images.length === 0} onChange={(e) => s.setTarget(e.target.value || null)}>
          {images.length === 0 && <option value="">no image loaded</option>}
          {images.map((i) => (
            <option key={i.id} value={i.id}>
              {i.name}
            </option>
          ))}
        </select>
      </label>
      <div className="field-row" role="radiogroup" aria-label="Area">
        <label>
          <input type="radio" name="detect-scope" checked={s.scope === 'image'} disabled={busy} onChange={() => s.setScope('image')} /> Whole image
        </label>
        <label>
          <input type="radio" name="detect-scope" checked={s.scope === 'visible'} disabled={busy} onChange={() => s.setScope('visible')} /> Visible extent
        </label>
      </div>
      <div className="button-row">
        <button onClick={() => void s.detect(controller)} disabled={busy}>
          Detect
        </button>
        <button onClick={() => void s.cancel()} disabled={s.status !== 'running'}>
          Cancel
        </button>
        <button onClick={() => s.clear(controller)} disabled={s.detections.length === 0 && s.status !== 'running' && !s.run}>
          Clear
        </button>
      </div>
      <div className="hint" role="status" data-testid="detect-status" data-status={s.status}>
        {s.status === 'loading-model' && 'Loading the detector… '}
        {s.status === 'running' && `Detecting in ${s.run?.imageName}… `}
        {s.status === 'done' && `${shown.length} object${shown.length === 1 ? '' : 's'} shown in ${s.run?.imageName} (${((s.run?.stats?.totalMs ?? 0) / 1000).toFixed(1)} s). `}
        {s.message}
      </div>
      <ProgressView />
      {s.run && <p className="hint" data-testid="detect-scale">{s.run.scaleNote}</p>}

      {classes.length > 0 && (
        <>
          <label>
            Score ≥ <strong data-testid="detect-threshold">{s.threshold.toFixed(2)}</strong>
            <input type="range" aria-label="Score threshold" min={MIN_THRESHOLD} max={0.95} step={0.05} value={s.threshold} onChange={(e) => s.setThreshold(Number(e.target.value))} />
          </label>
          <ul className="class-list" aria-label="Classes">
            {classes.map((name, c) => (
              <li key={name} data-testid="class-count" data-class={name} data-count={counts[c]}>
                <input type="checkbox" aria-label={`Show ${name}`} checked={!s.hiddenClasses.includes(c)} onChange={() => s.toggleClass(c)} />
                <span className="swatch" style={{ borderColor: classColour(c) }} />
                {name}
                <span className="count">{counts[c]}</span>
              </li>
            ))}
          </ul>
          <p className="hint" data-testid="detect-count" data-count={shown.length}>
            {shown.length} shown of {s.detections.length} detected
          </p>
          <button onClick={() => s.exportGeoJson()} disabled={shown.length === 0 || busy}>
            Export GeoJSON
          </button>
        </>
      )}
    </div>
  );
}
