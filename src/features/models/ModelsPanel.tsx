/**
 * Models panel: every manifest model with cache status and size, a backend
 * choice (auto / WebGPU / WASM; URL overrides win), Load / Test run / Delete,
 * download progress, the backend that actually ran, and errors.
 */
import { useEffect } from 'react';
import type { ModelEntry } from '../../core/models/manifest';
import { BACKEND_LABELS, isBackendPreference, type BackendPreference } from '../../runtime/backendPreference';
import { BackendBadge } from './BackendBadge';
import { formatBytes, formatMs } from './format';
import { useModelsStore, type ModelUiState } from './modelsStore';
import './models.css';

export function ModelsPanel() {
  const { manifest, manifestError, totalCacheBytes, init } = useModelsStore();
  useEffect(() => {
    void init();
  }, [init]);

  if (manifestError) return <p role="alert" className="model-error">{manifestError}</p>;
  if (!manifest) return <p>Loading model manifest…</p>;
  return (
    <div className="models-panel" data-testid="models-panel">
      <ul className="model-list">
        {manifest.models.map((m) => (
          <ModelRow key={m.id} entry={m} />
        ))}
      </ul>
      <p className="cache-total" data-testid="cache-total">
        Model cache: {formatBytes(totalCacheBytes)}
      </p>
    </div>
  );
}

const PREFERENCE_LABELS: Record<BackendPreference, string> = { auto: 'Auto', ...BACKEND_LABELS };

function ModelRow({ entry }: { entry: ModelEntry }) {
  const state = useModelsStore((s) => s.models[entry.id]);
  const cache = useModelsStore((s) => s.cache[entry.id]);
  const preference = useModelsStore((s) => s.preferenceFor(entry.id));
  const urlOverride = useModelsStore((s) => s.urlOverrideFor(entry.id));
  const { setBackend, loadModel, testRun, deleteModel } = useModelsStore.getState();
  const busy = state?.status === 'loading' || state?.status === 'running';
  const size = entry.files.filter((f) => f.role !== 'reference').reduce((n, f) => n + f.bytes, 0);

  return (
    <li className="model-row" data-testid={`model-${entry.id}`} data-status={state?.status ?? 'idle'}>
      <div className="model-title">
        <strong>{entry.title}</strong> <code>{entry.id}</code> v{entry.version}
      </div>
      <div className="model-meta">
        {formatBytes(size)} ·{' '}
        <span data-testid="cache-status" data-cached={cache?.cached ? 'yes' : 'no'}>
          {cache?.cached ? 'cached' : cache?.cachedBytes ? `partly cached (${formatBytes(cache.cachedBytes)})` : 'not cached'}
        </span>
      </div>
      <label className="model-backend">
        Backend{' '}
        <select
          aria-label={`Backend for ${entry.id}`}
          value={preference}
          disabled={urlOverride !== null || busy}
          onChange={(e) => isBackendPreference(e.target.value) && setBackend(entry.id, e.target.value)}
        >
          {(Object.keys(PREFERENCE_LABELS) as BackendPreference[]).map((p) => (
            <option key={p} value={p}>
              {PREFERENCE_LABELS[p]}
            </option>
          ))}
        </select>
        {urlOverride && <small> (set by URL)</small>}
      </label>
      <div className="model-actions">
        <button disabled={busy} onClick={() => void loadModel(entry.id)}>
          {state?.load ? 'Reload' : 'Load'}
        </button>
        {entry.selfTest && (
          <button disabled={busy} onClick={() => void testRun(entry.id)}>
            Test run
          </button>
        )}
        <button disabled={busy || !cache?.cachedBytes} onClick={() => void deleteModel(entry.id)}>
          Delete
        </button>
      </div>
      {state && <ModelProgress state={state} />}
      {state?.load && (
        <div className="model-load" data-testid="load-info">
          Running on <BackendBadge backend={state.load.backend} threads={state.load.threads} /> <small>({state.load.reason})</small>
          <br />
          {state.load.fromCache ? 'from cache' : 'downloaded'} · load {formatMs(state.load.loadMs)} · warm-up {formatMs(state.load.warmupMs)}
        </div>
      )}
      {state?.selfTest && <SelfTestLine result={state.selfTest} />}
      {state?.error && (
        <p role="alert" className="model-error" data-testid="model-error">
          {state.error}
        </p>
      )}
    </li>
  );
}

function ModelProgress({ state }: { state: ModelUiState }) {
  if (state.status !== 'loading') return null;
  const files = Object.values(state.progress);
  const loaded = files.reduce((n, p) => n + p.loaded, 0);
  const total = files.reduce((n, p) => n + p.total, 0);
  return (
    <div className="model-progress" data-testid="download-progress">
      <progress value={loaded} max={total || 1} /> {formatBytes(loaded)} of {formatBytes(total)}
    </div>
  );
}

function SelfTestLine({ result }: { result: NonNullable<ModelUiState['selfTest']> }) {
  const outputs = Object.fromEntries(Object.entries(result.outputs).map(([k, t]) => [k, Array.from(t.data as ArrayLike<number>)]));
  return (
    <div
      className={`self-test ${result.pass ? 'pass' : 'fail'}`}
      data-testid="self-test"
      data-pass={result.pass ? 'yes' : 'no'}
      data-backend={result.backend}
      data-max-abs-diff={result.maxAbsDiff}
      data-outputs={JSON.stringify(outputs)}
    >
      Test run on {BACKEND_LABELS[result.backend]}: {result.pass ? 'matches' : 'DIFFERS FROM'} the reference (max |Δ| {result.maxAbsDiff.toExponential(1)},
      tolerance {result.tolerance}) in {formatMs(result.runMs)}
    </div>
  );
}
