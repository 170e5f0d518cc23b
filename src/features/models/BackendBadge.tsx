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

/** Compact status for the app header: how many loaded models run on each backend (names on hover). */
export function ModelsStatusBadge() {
  const models = useModelsStore((s) => s.models);
  const loaded = Object.values(models).flatMap((m) => (m.load ? [m.load] : []));
  if (!loaded.length) return <span className="models-status" data-testid="models-status">no model loaded</span>;
  const groups = new Map<string, typeof loaded>();
  for (const l of loaded) {
    const key = `${l.backend}|${l.threads}`;
    groups.set(key, [...(groups.get(key) ?? []), l]);
  }
  return (
    <span className="models-status" data-testid="models-status">
      {[...groups.values()].map((group) => (
        <span key={`${group[0].backend}|${group[0].threads}`} title={group.map((l) => `${l.modelId}: ${l.reason}`).join('\n')}>
          {group.length} model{group.length === 1 ? '' : 's'} <BackendBadge backend={group[0].backend} threads={group[0].threads} />{' '}
        </span>
      ))}
    </span>
  );
}
