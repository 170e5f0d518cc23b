import { BACKEND_LABELS, type Backend } from '../../runtime/backendPreference';
import { useModelsStore } from './modelsStore';

/** The backend a session actually runs on, e.g. "WASM ×2" or "WebGPU". */
export function BackendBadge({ backend, threads }: { backend: Backend; threads?: number }) {
  const label = backend === 'wasm' && threads && threads > 1 ? `${BACKEND_LABELS[backend]} ×${threads}` : BACKEND_LABELS[backend];
  return (
    <span className={`backend-badge backend-${backend}`} data-testid="backend-badge" data-backend={backend} title={`Running on ${label}`}>
      {label}
    </span>
  );
}

/** Compact status for the app header: the backends of the loaded models. */
export function ModelsStatusBadge() {
  const models = useModelsStore((s) => s.models);
  const loaded = Object.values(models).flatMap((m) => (m.load ? [m.load] : []));
  if (!loaded.length) return <span className="models-status" data-testid="models-status">no model loaded</span>;
  return (
    <span className="models-status" data-testid="models-status">
      {loaded.map((l) => (
        <span key={l.modelId} title={l.reason}>
          {l.modelId} <BackendBadge backend={l.backend} threads={l.threads} />{' '}
        </span>
      ))}
    </span>
  );
}
