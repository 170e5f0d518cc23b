import { useEffect, useState } from 'react';
import { MapView } from '../map/MapView';
import { FrameBanner } from '../map/FrameBanner';
import { useLayersStore } from '../features/layers/layersStore';
import { MapController } from '../map/mapController';
import { LayersPanel } from '../features/layers/LayersPanel';
import { ingestFiles } from '../features/layers/ingest';
import { filesFromDataTransfer } from '../features/layers/fileDrop';
import { ModelsPanel, ModelsStatusBadge } from '../features/models';
import { SearchPanel } from '../features/search/SearchPanel';
import { FindLikeRegionButton } from '../features/search/FindLikeRegion';
import { DetectPanel } from '../features/detect/DetectPanel';
import { CaptionPanel } from '../features/caption/CaptionPanel';
import { AskOverlay } from '../features/caption/AskBox';
import { startAutoCaption } from '../features/caption/captionStore';

type PanelTab = 'layers' | 'caption' | 'search' | 'detect' | 'models';

/** Accepts files dropped anywhere on the page, with a visible drop target while dragging. */
function useWindowDrop(onFiles: (files: File[]) => void): boolean {
  const [dragging, setDragging] = useState(false);
  useEffect(() => {
    let depth = 0;
    const hasFiles = (e: DragEvent) => Array.from(e.dataTransfer?.types ?? []).includes('Files');
    const enter = (e: DragEvent) => {
      if (!hasFiles(e)) return;
      depth++;
      setDragging(true);
    };
    const leave = () => {
      depth = Math.max(0, depth - 1);
      if (depth === 0) setDragging(false);
    };
    const over = (e: DragEvent) => {
      if (hasFiles(e)) e.preventDefault();
    };
    const drop = (e: DragEvent) => {
      if (!e.dataTransfer) return;
      e.preventDefault();
      depth = 0;
      setDragging(false);
      void filesFromDataTransfer(e.dataTransfer).then(onFiles);
    };
    window.addEventListener('dragenter', enter);
    window.addEventListener('dragleave', leave);
    window.addEventListener('dragover', over);
    window.addEventListener('drop', drop);
    // Lets scripted drops (e2e, benchmarks) wait until a drop can no longer be lost: React mounts after `load`.
    document.documentElement.dataset.dropReady = 'true';
    return () => {
      delete document.documentElement.dataset.dropReady;
      window.removeEventListener('dragenter', enter);
      window.removeEventListener('dragleave', leave);
      window.removeEventListener('dragover', over);
      window.removeEventListener('drop', drop);
    };
  }, [onFiles]);
  return dragging;
}

export function App() {
  const [controller] = useState(() => new MapController());
  const [tab, setTab] = useState<PanelTab>('layers');
  const [onFiles] = useState(() => (files: File[]) => void ingestFiles(files, controller));
  const dragging = useWindowDrop(onFiles);
  useEffect(() => startAutoCaption(), []);
  return (
    <div className="app">
      <MapView controller={controller} />
      <AskOverlay
        controller={controller}
        regionActions={(imageId, window) => <FindLikeRegionButton imageId={imageId} window={window} onDone={() => setTab('search')} />}
      />
      <FrameBanner controller={controller} nameOf={(id) => useLayersStore.getState().images.find((i) => i.id === id)?.name} />
      <aside className="side-panel" aria-label="Side panel">
        <header className="brand">
          RS Lens <ModelsStatusBadge />
        </header>
        <nav className="tabs" role="tablist">
          {(['layers', 'caption', 'search', 'detect', 'models'] as const).map((t) => (
            <button key={t} role="tab" aria-selected={tab === t} onClick={() => setTab(t)}>
              {t}
            </button>
          ))}
        </nav>
        <section className="panel-body">
          {tab === 'layers' && <LayersPanel controller={controller} />}
          {tab === 'caption' && <CaptionPanel controller={controller} />}
          {tab === 'search' && <SearchPanel controller={controller} />}
          {tab === 'detect' && <DetectPanel controller={controller} />}
          {tab === 'models' && <ModelsPanel />}
        </section>
      </aside>
      {dragging && (
        <div className="drop-overlay" data-testid="drop-overlay">
          Drop images to load them
        </div>
      )}
    </div>
  );
}
