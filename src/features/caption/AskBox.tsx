/**
 * Click-to-ask: a single click on the map opens this box anchored at the point (an OpenLayers
 * overlay); the dashed square on the map is the region the model sees. Other features may offer
 * their own actions on that region (`regionActions`), so this box does not depend on them.
 */
import { useEffect, useMemo, useState, type FormEvent, type ReactNode } from 'react';
import { createPortal } from 'react-dom';
import Overlay from 'ol/Overlay';
import type { MapController } from '../../map/mapController';
import { MAX_INSTRUCTION_CHARS } from '../../core/caption/pipeline';
import { windowKey, type PixelWindow } from '../../core/raster/types';
import { useLayersStore } from '../layers/layersStore';
import { CaptionDetails } from './CaptionDetails';
import { REGION_SIZES, regionWindow, SUGGESTED_QUESTIONS, useCaptionStore } from './captionStore';

function useOverlay(controller: MapController): HTMLDivElement {
  const element = useMemo(() => document.createElement('div'), []);
  useEffect(() => {
    const overlay = new Overlay({ element, positioning: 'top-left', offset: [12, 12], stopEvent: true, autoPan: { margin: 20 } });
    controller.map.addOverlay(overlay);
    const unsubscribe = useCaptionStore.subscribe((s) => overlay.setPosition(s.ask?.coordinate ?? s.askMiss?.coordinate ?? undefined));
    overlay.setPosition(useCaptionStore.getState().ask?.coordinate);
    const offClick = controller.onClick((coordinate) => useCaptionStore.getState().openAskAt(controller, coordinate));
    const offFrame = controller.onFrameChange(() => useCaptionStore.getState().closeAsk(controller));
    return () => {
      unsubscribe();
      offFrame();
      offClick();
      controller.map.removeOverlay(overlay);
    };
  }, [controller, element]);
  return element;
}

/** Extra buttons shown for the picked region, given its image and full-res pixel window. */
export type RegionActions = (imageId: string, window: PixelWindow) => ReactNode;

function AskContent({ controller, regionActions }: { controller: MapController; regionActions?: RegionActions }) {
  const s = useCaptionStore();
  const image = useLayersStore((st) => st.images.find((i) => i.id === s.ask?.imageId));
  const [question, setQuestion] = useState('');
  const [problem, setProblem] = useState<string | null>(null);
  if (s.askMiss) {
    return (
      <div className="ask-box" data-testid="ask-miss" role="dialog" aria-label="Ask">
        <span>{s.askMiss.message}</span>
        <button className="close" aria-label="Close" onClick={() => s.closeAsk(controller)}>
          ×
        </button>
      </div>
    );
  }
  if (!s.ask || !image) return null;
  const ask = s.ask;
  const window = regionWindow(image, ask.col, ask.row, s.regionSize);
  const near = (s.history[ask.imageId] ?? []).filter((q) => Math.abs(q.point.col - ask.col) <= s.regionSize / 2 && Math.abs(q.point.row - ask.row) <= s.regionSize / 2).slice(0, 5);
  const mpp = image.info.pixelSizeMetres;

  const submit = (text: string) => {
    const trimmed = text.replace(/\s+/g, ' ').trim();
    if (!trimmed) return setProblem('Type a question first.');
    if (trimmed.length > MAX_INSTRUCTION_CHARS) return setProblem(`That question is ${trimmed.length} characters long; keep it under ${MAX_INSTRUCTION_CHARS}.`);
    setProblem(null);
    setQuestion('');
    void s.askQuestion(trimmed);
  };
  const onSubmit = (e: FormEvent) => {
    e.preventDefault();
    submit(question);
  };

  return (
    <div className="ask-box" data-testid="ask-box" data-window={windowKey(window)} role="dialog" aria-label="Ask about this spot">
      <div className="ask-head">
        <strong>Ask about this spot</strong>
        <button className="close" aria-label="Close" onClick={() => s.closeAsk(controller)}>
          ×
        </button>
      </div>
      <div className="hint">
        {image.name} · {ask.lonLat ? `${ask.lonLat[1].toFixed(5)}°, ${ask.lonLat[0].toFixed(5)}°` : `pixel ${Math.round(ask.col)}, ${Math.round(ask.row)}`}
      </div>
      <label className="hint">
        Region{' '}
        <select aria-label="Region size" value={s.regionSize} onChange={(e) => s.setRegionSize(Number(e.target.value), controller)}>
          {REGION_SIZES.map((size) => (
            <option key={size} value={size}>
              {size} px{mpp ? ` (≈ ${Math.round(size * mpp)} m)` : ''}
            </option>
          ))}
        </select>{' '}
        → the model sees {window.width}×{window.height} px at 224×224
      </label>
      {regionActions && <div className="region-actions">{regionActions(ask.imageId, window)}</div>}
      <form onSubmit={onSubmit}>
        <input aria-label="Question" data-testid="ask-input" value={question} placeholder="e.g. how many cars are there?" onChange={(e) => setQuestion(e.target.value)} />
        <button type="submit" data-testid="ask-submit">
          Ask
        </button>
      </form>
      {problem && (
        <p className="error" role="alert" data-testid="ask-problem">
          {problem}
        </p>
      )}
      <div className="suggestions">
        {SUGGESTED_QUESTIONS.map((q) => (
          <button key={q} className="chip" onClick={() => submit(q)}>
            {q}
          </button>
        ))}
      </div>
      <ul className="ask-history" data-testid="ask-history">
        {near.map((q) => (
          <li key={q.jobId} data-testid="ask-answer-item" data-status={q.status}>
            <div>
              <strong>{q.question}</strong>{' '}
              {(q.status === 'queued' || q.status === 'running') && (
                <button className="link" onClick={() => s.stop(q.jobId)}>
                  stop
                </button>
              )}
            </div>
            <div className="answer" data-testid="ask-answer">
              {q.text || (q.status === 'queued' || q.status === 'running' ? '…' : q.status === 'stopped' ? '(stopped)' : '')}
            </div>
            {q.error && (
              <div className="error" role="alert">
                {q.error}
              </div>
            )}
            {q.warnings.map((w) => (
              <div key={w} className="hint warning" data-testid="ask-warning">
                {w}
              </div>
            ))}
            <CaptionDetails route={q.route} result={q.result} info={s.models.info} instruction={q.question} backend={q.backend} />
          </li>
        ))}
      </ul>
    </div>
  );
}

export function AskOverlay({ controller, regionActions }: { controller: MapController; regionActions?: RegionActions }) {
  const element = useOverlay(controller);
  return createPortal(<AskContent controller={controller} regionActions={regionActions} />, element);
}
