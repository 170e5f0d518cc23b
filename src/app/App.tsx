import { useState } from 'react';
import { MapView } from '../map/MapView';

type PanelTab = 'layers' | 'models';

export function App() {
  const [tab, setTab] = useState<PanelTab>('layers');
  return (
    <div className="app">
      <MapView />
      <aside className="side-panel" aria-label="Side panel">
        <header className="brand">RS Lens</header>
        <nav className="tabs" role="tablist">
          {(['layers', 'models'] as const).map((t) => (
            <button key={t} role="tab" aria-selected={tab === t} onClick={() => setTab(t)}>
              {t}
            </button>
          ))}
        </nav>
        <section className="panel-body">{tab}</section>
      </aside>
    </div>
  );
}
