/**
 * Search hits on the map: each ranked window outlined and numbered by rank, the colour running
 * from pale (lowest score shown) to deep orange (best), so the spread of matches over a big tiled
 * image is visible at a glance. Like detections, outlines show only in their image's frame.
 */
import Feature from 'ol/Feature';
import Polygon from 'ol/geom/Polygon';
import VectorLayer from 'ol/layer/Vector';
import VectorSource from 'ol/source/Vector';
import { Fill, Stroke, Style, Text } from 'ol/style';
import type { PixelWindow } from '../core/raster/types';
import type { MapController } from './mapController';

export interface RankedWindow {
  imageId: string;
  window: PixelWindow;
  score: number;
}

const PALE = [255, 237, 160];
const DEEP = [230, 85, 13];

/** Colour of a hit whose score sits at `t` (0 = lowest shown, 1 = best) in the shown range. */
function rampColour(t: number, alpha: number): string {
  const c = PALE.map((p, i) => Math.round(p + (DEEP[i] - p) * t));
  return `rgba(${c[0]},${c[1]},${c[2]},${alpha})`;
}

/** Outline, fill and rank label of the hit at `rank`, whose score sits at `t` in the shown range. */
function hitStyle(rank: number, t: number): Style {
  return new Style({
    stroke: new Stroke({ color: rampColour(t, 0.95), width: 1.5 + 1.5 * t }),
    fill: new Fill({ color: rampColour(t, 0.1 + 0.15 * t) }),
    text: new Text({
      text: String(rank),
      font: 'bold 12px sans-serif',
      fill: new Fill({ color: '#fff' }),
      stroke: new Stroke({ color: 'rgba(0,0,0,0.8)', width: 3 }),
      overflow: true,
    }),
  });
}

export class HitOutlineLayer {
  private readonly source = new VectorSource<Feature<Polygon>>();
  private readonly layer: VectorLayer<VectorSource<Feature<Polygon>>>;

  constructor(private readonly controller: MapController) {
    this.layer = new VectorLayer({
      source: this.source,
      zIndex: 95, // above detections, below the clicked-hit highlight
      // Edge tiles of a big image are shifted inwards and can share a centre: overlapping rank labels
      // would merge into one unreadable number, so the better-ranked one is kept (drawn last: on top).
      declutter: true,
      style: (feature) => this.styleOf(feature as Feature<Polygon>),
      properties: { name: 'search-hits' },
    });
    controller.map.addLayer(this.layer);
    controller.onFrameChange(() => this.mark());
  }

  /** Replaces the outlines by these hits, best first (rank 1 = hits[0]); images not on the map are left out. */
  show(hits: readonly RankedWindow[]): void {
    this.source.clear();
    if (hits.length === 0) return this.mark();
    const scores = hits.map((h) => h.score);
    const [lo, hi] = [Math.min(...scores), Math.max(...scores)];
    const features = hits.flatMap((hit, i) => {
      const frame = this.controller.frameOf(hit.imageId);
      if (frame === null) return [];
      const t = hi > lo ? (hit.score - lo) / (hi - lo) : 1;
      // Styled once here, not per render: the style function runs on every frame of a pan or zoom.
      return [new Feature({ geometry: new Polygon([this.controller.windowRing(hit.imageId, hit.window)]), frame, style: hitStyle(i + 1, t) })];
    });
    // Best last, so it is drawn on top where tiles overlap.
    this.source.addFeatures(features.reverse());
    this.mark();
  }

  /** The number of outlines in the shown frame, mirrored on the map element (data-hit-outlines) for tests and assistive tools. */
  private mark(): void {
    const el = this.controller.map.getTargetElement();
    if (!el) return;
    const frame = this.controller.currentFrame();
    el.dataset.hitOutlines = String(this.source.getFeatures().filter((f) => f.get('frame') === frame).length);
  }

  private styleOf(feature: Feature<Polygon>): Style | undefined {
    return feature.get('frame') === this.controller.currentFrame() ? (feature.get('style') as Style) : undefined;
  }
}
