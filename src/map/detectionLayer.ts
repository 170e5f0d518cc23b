/**
 * Detected boxes on the map: one OpenLayers vector layer over the MapController's map, boxes
 * coloured by class, filtered by score threshold and class toggles in the style function (so
 * changing them redraws at once, with no re-inference), and a tooltip with class and score on
 * hover. Boxes of an image show only while that image's frame (geo or its pixel view) is shown.
 */
import Feature from 'ol/Feature';
import Overlay from 'ol/Overlay';
import Polygon from 'ol/geom/Polygon';
import VectorLayer from 'ol/layer/Vector';
import VectorSource from 'ol/source/Vector';
import { Fill, Stroke, Style } from 'ol/style';
import type { EventsKey } from 'ol/events';
import { unByKey } from 'ol/Observable';
import type { Detection } from '../core/detect/types';
import type { MapController } from './mapController';

/** Distinct, colour-blind-friendly (Okabe–Ito) colours, by class index. */
export const CLASS_COLOURS = ['#e69f00', '#56b4e9', '#009e73', '#f0e442', '#0072b2', '#d55e00', '#cc79a7'];

export const classColour = (classIndex: number) => CLASS_COLOURS[classIndex % CLASS_COLOURS.length];

function withAlpha(hex: string, alpha: number): string {
  const n = Number.parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${alpha})`;
}

export class DetectionLayer {
  private readonly source = new VectorSource<Feature<Polygon>>();
  private readonly layer: VectorLayer<VectorSource<Feature<Polygon>>>;
  private readonly tooltip: Overlay;
  private readonly tooltipElement: HTMLDivElement;
  private readonly styles: Style[] = [];
  private readonly listener: EventsKey;
  private threshold = 0;
  private hiddenClasses = new Set<number>();
  private classes: string[] = [];

  constructor(private readonly controller: MapController) {
    this.layer = new VectorLayer({
      source: this.source,
      zIndex: 90,
      style: (feature) => this.styleOf(feature as Feature<Polygon>),
      properties: { name: 'detections' },
    });
    this.tooltipElement = document.createElement('div');
    this.tooltipElement.className = 'detect-tooltip';
    this.tooltipElement.dataset.testid = 'detect-tooltip';
    this.tooltip = new Overlay({ element: this.tooltipElement, offset: [12, 0], positioning: 'center-left', stopEvent: false });
    controller.map.addLayer(this.layer);
    controller.map.addOverlay(this.tooltip);
    this.listener = controller.map.on('pointermove', (event) => {
      if (event.dragging) return;
      const hit = controller.map.forEachFeatureAtPixel(event.pixel, (f) => f as Feature<Polygon>, { layerFilter: (l) => l === this.layer, hitTolerance: 2 });
      this.showTooltip(hit ?? null, event.coordinate);
    });
  }

  setClasses(classes: string[]): void {
    this.classes = classes;
  }

  /** Adds boxes of an image (e.g. one finished tile). `frame`: 'geo' or the image id of its pixel view. */
  add(imageId: string, frame: string, detections: readonly Detection[]): void {
    const features = detections.map((d) => {
      const corners = [
        this.controller.imageToView(imageId, d.x1, d.y1),
        this.controller.imageToView(imageId, d.x2, d.y1),
        this.controller.imageToView(imageId, d.x2, d.y2),
        this.controller.imageToView(imageId, d.x1, d.y2),
      ];
      if (corners.some((c) => c === null)) return null;
      const ring = [...(corners as [number, number][]), corners[0]!];
      return new Feature({ geometry: new Polygon([ring]), imageId, frame, score: d.score, classIndex: d.classIndex });
    });
    this.source.addFeatures(features.filter((f): f is Feature<Polygon> => f !== null));
  }

  /** Replaces every box of an image (e.g. the streamed tiles by the merged result). */
  replace(imageId: string, frame: string, detections: readonly Detection[]): void {
    this.clear(imageId);
    this.add(imageId, frame, detections);
  }

  clear(imageId?: string): void {
    if (imageId === undefined) this.source.clear();
    else for (const f of this.source.getFeatures().filter((f) => f.get('imageId') === imageId)) this.source.removeFeature(f);
    this.tooltip.setPosition(undefined);
  }

  setFilter(threshold: number, hiddenClasses: Iterable<number>): void {
    this.threshold = threshold;
    this.hiddenClasses = new Set(hiddenClasses);
    this.layer.changed();
  }

  /** Boxes currently drawn (in the shown frame, passing the filter). */
  drawnCount(): number {
    return this.source.getFeatures().filter((f) => this.isShown(f)).length;
  }

  dispose(): void {
    unByKey(this.listener);
    this.controller.map.removeOverlay(this.tooltip);
    this.controller.map.removeLayer(this.layer);
    this.layer.dispose();
  }

  private isShown(feature: Feature<Polygon>): boolean {
    return feature.get('score') >= this.threshold && !this.hiddenClasses.has(feature.get('classIndex')) && feature.get('frame') === this.controller.currentFrame();
  }

  private styleOf(feature: Feature<Polygon>): Style | undefined {
    if (!this.isShown(feature)) return undefined;
    const classIndex = feature.get('classIndex') as number;
    this.styles[classIndex] ??= new Style({
      stroke: new Stroke({ color: classColour(classIndex), width: 2 }),
      fill: new Fill({ color: withAlpha(classColour(classIndex), 0.12) }),
    });
    return this.styles[classIndex];
  }

  private showTooltip(feature: Feature<Polygon> | null, coordinate: number[]): void {
    if (!feature) {
      this.tooltip.setPosition(undefined);
      return;
    }
    const classIndex = feature.get('classIndex') as number;
    this.tooltipElement.textContent = `${this.classes[classIndex] ?? `class ${classIndex}`} ${(feature.get('score') as number).toFixed(2)}`;
    this.tooltipElement.dataset.class = this.classes[classIndex];
    this.tooltip.setPosition(coordinate);
  }
}
