import OlMap from 'ol/Map';
import View from 'ol/View';
import type BaseLayer from 'ol/layer/Base';
import WebGLTileLayer from 'ol/layer/WebGLTile';
import ImageLayer from 'ol/layer/Image';
import GeoTIFFSource from 'ol/source/GeoTIFF';
import ImageStatic from 'ol/source/ImageStatic';
import type Projection from 'ol/proj/Projection';
import { fromLonLat, toLonLat } from 'ol/proj';
import { getCenter } from 'ol/extent';
import type { Extent } from 'ol/extent';
import { defaults as defaultControls, ScaleLine, MousePosition } from 'ol/control';
import { createStringXY } from 'ol/coordinate';
import VectorLayer from 'ol/layer/Vector';
import VectorSource from 'ol/source/Vector';
import Feature from 'ol/Feature';
import Polygon from 'ol/geom/Polygon';
import { Fill, Stroke, Style } from 'ol/style';
import { windowKey, type GeoReference, type PixelWindow, type RasterInfo, type RgbaImage } from '../core/raster/types';
import { warpPreview } from '../core/geo/warp';
import { boundsLonLat, crossesAntimeridian, lonLatToPixel, pixelToLonLat } from '../core/geo/footprint';
import { ensureProjection, pixelProjection } from './projections';
import { createBasemapLayers } from './basemap';

/** Per-band display range (data values mapped to 0…1), chosen by the ingestion code. */
export interface DisplayRange {
  min: number[];
  max: number[];
}

export interface ImageLayerSpec {
  id: string;
  file: Blob;
  info: RasterInfo;
  /** Whole-image preview; used where the renderer cannot place the file itself. */
  preview: RgbaImage;
  displayRange: DisplayRange | null;
}

interface MapEntry {
  layer: BaseLayer;
  info: RasterInfo;
  /** Null: the layer lives in the shared Web Mercator view. */
  pixelProjection: Projection | null;
  extent: Extent;
  userVisible: boolean;
  dispose?: () => void;
}

const WEB_MERCATOR = 'EPSG:3857';
const WARP_MAX_SIDE = 2048;

function isNorthUp(geo: GeoReference): boolean {
  return geo.transform[2] === 0 && geo.transform[4] === 0 && geo.transform[1] > 0 && geo.transform[5] < 0;
}

/**
 * OpenLayers' GeoTIFF source renders north-up files in known CRSs at full detail. It cannot
 * place rotated or GCP-placed files, clips at ±180°, and misplaces CRSs without an EPSG code
 * (no projection extent to reproject from): those get a warped preview instead.
 */
function needsOwnWarp(geo: GeoReference, info: RasterInfo): boolean {
  return (
    !isNorthUp(geo) ||
    geo.epsg === null ||
    geo.method === 'gcp-fit' ||
    crossesAntimeridian(boundsLonLat(geo, info.width, info.height))
  );
}

function toCanvasUrl(image: RgbaImage): string {
  const canvas = document.createElement('canvas');
  canvas.width = image.width;
  canvas.height = image.height;
  canvas.getContext('2d')!.putImageData(new ImageData(new Uint8ClampedArray(image.data), image.width, image.height), 0, 0);
  return canvas.toDataURL('image/png');
}

const MERCATOR_HALF_WORLD = 20037508.342789244;

/** Longitude of a Web Mercator x, without wrapping into ±180°. */
function unwrappedLon(x: number): number {
  return (x / MERCATOR_HALF_WORLD) * 180;
}

/**
 * Web Mercator extent of the image footprint. Longitudes stay continuous across the
 * antimeridian (x may exceed the world's edge), so such images keep a small extent.
 */
function mercatorExtent(geo: GeoReference, info: RasterInfo): Extent {
  const [minLon, minLat, maxLon, maxLat] = boundsLonLat(geo, info.width, info.height);
  const clampLat = (lat: number) => Math.max(-85.05, Math.min(85.05, lat));
  return [...fromLonLat([minLon, clampLat(minLat)]), ...fromLonLat([maxLon, clampLat(maxLat)])];
}

/** Grey or RGB from the first bands, with the alpha band (file alpha or nodata mask) last. */
function colourBandsOf(info: RasterInfo): number[] {
  return [...new Set(info.rgbBands)];
}

function displayStyle(info: RasterInfo) {
  const colourCount = colourBandsOf(info).length;
  const hasAlpha = info.alphaBand !== null || info.nodata !== null;
  const band = (n: number) => ['band', n];
  const rgb = colourCount === 3 ? [band(1), band(2), band(3)] : [band(1), band(1), band(1)];
  return { color: ['array', ...rgb, hasAlpha ? band(colourCount + 1) : 1] };
}

/**
 * Owns the OpenLayers map: one Web Mercator view for georeferenced images, and a pixel view
 * per plain picture (pictures have no place on Earth, so each is shown in its own frame).
 */
export class MapController {
  readonly map: OlMap;
  private readonly entries = new Map<string, MapEntry>();
  private readonly basemap: BaseLayer[];
  private readonly geoView: View;
  private activePixelImage: string | null = null;
  private readonly highlight = new VectorSource();
  /** The region the Ask box is about (dashed square), separate from search highlights. */
  private readonly region = new VectorSource();
  private readonly mousePosition = new MousePosition({ coordinateFormat: createStringXY(5), projection: 'EPSG:4326', className: 'ol-mouse-position' });
  private readonly frameListeners = new Set<(frame: string) => void>();

  constructor(target?: HTMLElement) {
    this.geoView = new View({ projection: WEB_MERCATOR, center: [0, 2_000_000], zoom: 2, constrainResolution: false });
    this.basemap = createBasemapLayers();
    this.map = new OlMap({
      target,
      view: this.geoView,
      layers: [
        ...this.basemap,
        new VectorLayer({
          source: this.highlight,
          zIndex: 100,
          style: new Style({ stroke: new Stroke({ color: '#ffcc00', width: 3 }), fill: new Fill({ color: 'rgba(255,204,0,0.08)' }) }),
        }),
        new VectorLayer({
          source: this.region,
          zIndex: 101,
          style: new Style({ stroke: new Stroke({ color: '#00e5ff', width: 2, lineDash: [8, 6] }), fill: new Fill({ color: 'rgba(0,229,255,0.06)' }) }),
        }),
      ],
      controls: defaultControls({ attribution: false }).extend([
        new ScaleLine(),
        this.mousePosition,
      ]),
    });
  }

  setTarget(target: HTMLElement | undefined): void {
    this.map.setTarget(target);
  }

  addImage(spec: ImageLayerSpec): void {
    const entry = spec.info.geo ? this.createGeoEntry(spec, spec.info.geo) : this.createPictureEntry(spec);
    this.entries.set(spec.id, entry);
    this.map.addLayer(entry.layer);
    this.refreshVisibility();
  }

  removeImage(id: string): void {
    const entry = this.entries.get(id);
    if (!entry) return;
    this.map.removeLayer(entry.layer);
    entry.layer.dispose();
    for (const f of this.region.getFeatures()) if (f.get('imageId') === id) this.region.removeFeature(f);
    entry.dispose?.();
    this.entries.delete(id);
    if (this.activePixelImage === id) this.showGeoView();
    this.refreshVisibility();
  }

  setVisible(id: string, visible: boolean): void {
    const entry = this.entries.get(id);
    if (!entry) return;
    entry.userVisible = visible;
    this.refreshVisibility();
  }

  /** Extent of the image layer in lon/lat, as OpenLayers places it; null for pictures. */
  extentLonLat(id: string): Extent | null {
    const entry = this.entries.get(id);
    if (!entry || entry.pixelProjection) return null;
    // Longitudes unwrapped, so extents across the antimeridian stay continuous.
    const [minX, minY, maxX, maxY] = entry.extent;
    return [unwrappedLon(minX), toLonLat([minX, minY])[1], unwrappedLon(maxX), toLonLat([maxX, maxY])[1]];
  }

  zoomTo(id: string): void {
    const entry = this.entries.get(id);
    if (!entry) return;
    if (entry.pixelProjection) {
      this.setFrame(id);
      const view = new View({ projection: entry.pixelProjection, center: getCenter(entry.extent), zoom: 1, maxZoom: 12 });
      this.map.setView(view);
      view.fit(entry.extent, { padding: [20, 20, 20, 20] });
    } else {
      this.showGeoView();
      this.geoView.fit(entry.extent, { padding: [20, 20, 20, 20], maxZoom: 20 });
    }
    this.refreshVisibility();
  }

  /**
   * View coordinates of a full-res pixel position of an image: Web Mercator for georeferenced
   * images (longitudes unwrapped next to the image), y-up pixel space for the others.
   */
  imageToView(id: string, col: number, row: number): [number, number] | null {
    const entry = this.entries.get(id);
    if (!entry) return null;
    if (entry.pixelProjection || !entry.info.geo) return [col, entry.info.height - row];
    const [lon, lat] = pixelToLonLat(entry.info.geo)(col, row);
    const [x, y] = fromLonLat([lon, lat]);
    // Keep x on the same world copy as the image extent.
    const world = 2 * MERCATOR_HALF_WORLD;
    const centreX = (entry.extent[0] + entry.extent[2]) / 2;
    return [x + world * Math.round((centreX - x) / world), y];
  }

  /**
   * The part of an image the map currently shows, in full-res pixels (clipped to the image), or
   * null when the image is not in the shown frame or not in view.
   */
  visibleImageWindow(id: string): PixelWindow | null {
    const entry = this.entries.get(id);
    if (!entry) return null;
    const inFrame = entry.pixelProjection ? this.activePixelImage === id : this.activePixelImage === null;
    if (!inFrame) return null;
    const [minX, minY, maxX, maxY] = this.map.getView().calculateExtent(this.map.getSize());
    const { width, height, geo } = entry.info;
    let corners: [number, number][];
    if (entry.pixelProjection || !geo) {
      corners = [[minX, height - maxY], [maxX, height - minY]];
    } else {
      const toPixel = lonLatToPixel(geo);
      const steps = 4; // densified edges: the view rectangle is curved in the image's CRS
      corners = [];
      for (let i = 0; i <= steps; i++) {
        for (let j = 0; j <= steps; j++) {
          const x = minX + ((maxX - minX) * i) / steps;
          const y = minY + ((maxY - minY) * j) / steps;
          const pixel = toPixel(unwrappedLon(x), toLonLat([x, y])[1]);
          if (pixel) corners.push(pixel);
        }
      }
    }
    const cols = corners.map((c) => c[0]);
    const rows = corners.map((c) => c[1]);
    const x0 = Math.max(0, Math.floor(Math.min(...cols)));
    const y0 = Math.max(0, Math.floor(Math.min(...rows)));
    const x1 = Math.min(width, Math.ceil(Math.max(...cols)));
    const y1 = Math.min(height, Math.ceil(Math.max(...rows)));
    return x1 > x0 && y1 > y0 ? { x: x0, y: y0, width: x1 - x0, height: y1 - y0 } : null;
  }

  /** The frame an image is shown in ('geo', or its own id for a picture), or null if it is not on the map. */
  frameOf(id: string): string | null {
    const entry = this.entries.get(id);
    if (!entry) return null;
    return entry.pixelProjection ? id : 'geo';
  }

  /** View-coordinate ring around a pixel window (edges densified: they curve in Web Mercator). */
  windowRing(id: string, window: PixelWindow): [number, number][] {
    const { x, y, width, height } = window;
    const steps = 8;
    const at = (col: number, row: number) => this.imageToView(id, col, row)!;
    const ring: [number, number][] = [];
    for (let i = 0; i < steps; i++) ring.push(at(x + (width * i) / steps, y));
    for (let i = 0; i < steps; i++) ring.push(at(x + width, y + (height * i) / steps));
    for (let i = 0; i < steps; i++) ring.push(at(x + width - (width * i) / steps, y + height));
    for (let i = 0; i < steps; i++) ring.push(at(x, y + height - (height * i) / steps));
    ring.push(ring[0]);
    return ring;
  }

  /** Zooms to a window of an image (e.g. a search hit) and outlines it. */
  focusWindow(id: string, window: PixelWindow): void {
    if (!this.entries.has(id)) return;
    this.zoomTo(id);
    const polygon = new Polygon([this.windowRing(id, window)]);
    this.highlight.clear();
    this.highlight.addFeature(new Feature({ geometry: polygon, imageId: id }));
    this.markHighlight(id, window);
    this.map.getView().fit(polygon.getExtent(), { padding: [60, 60, 60, 60], maxZoom: 20, duration: 0 });
  }

  /** The outlined window, mirrored on the map element (data-highlight-*) for tests and assistive tools. */
  private markHighlight(id: string | null, window?: PixelWindow): void {
    const el = this.map.getTargetElement();
    if (!el) return;
    if (id && window) {
      el.dataset.highlightImage = id;
      el.dataset.highlightWindow = windowKey(window);
    } else {
      delete el.dataset.highlightImage;
      delete el.dataset.highlightWindow;
    }
  }

  /** Outlines the region the Ask box is about (replacing the previous one); null clears it. */
  showRegion(id: string | null, window?: PixelWindow): void {
    this.region.clear();
    if (!id || !window || !this.entries.has(id)) return;
    this.region.addFeature(new Feature({ geometry: new Polygon([this.windowRing(id, window)]), imageId: id }));
  }

  /**
   * The topmost visible image of the shown frame under a view coordinate, with the full-res
   * pixel position there; null when the point is outside every image.
   */
  imageAt(coordinate: [number, number]): { imageId: string; col: number; row: number } | null {
    const [x, y] = coordinate;
    const ids = [...this.entries.keys()].reverse(); // later layers draw on top
    for (const id of ids) {
      const entry = this.entries.get(id)!;
      const inFrame = entry.pixelProjection ? this.activePixelImage === id : this.activePixelImage === null;
      if (!inFrame || !entry.userVisible) continue;
      const { width, height, geo } = entry.info;
      let pixel: [number, number] | null;
      if (entry.pixelProjection || !geo) pixel = [x, height - y];
      else {
        const world = 2 * MERCATOR_HALF_WORLD;
        const centreX = (entry.extent[0] + entry.extent[2]) / 2;
        const xNear = x + world * Math.round((centreX - x) / world);
        pixel = lonLatToPixel(geo)(unwrappedLon(xNear), toLonLat([xNear, y])[1]);
      }
      if (pixel && pixel[0] >= 0 && pixel[1] >= 0 && pixel[0] < width && pixel[1] < height) {
        return { imageId: id, col: pixel[0], row: pixel[1] };
      }
    }
    return null;
  }

  /** Lon/lat of a full-res pixel of a georeferenced image; null for pictures. */
  pixelLonLat(id: string, col: number, row: number): [number, number] | null {
    const geo = this.entries.get(id)?.info.geo;
    return geo ? pixelToLonLat(geo)(col, row) : null;
  }

  clearHighlight(): void {
    this.highlight.clear();
    this.markHighlight(null);
  }

  /** Called with the new frame ('geo' or a picture's id) whenever the view changes frame. */
  onFrameChange(listener: (frame: string) => void): () => void {
    this.frameListeners.add(listener);
    return () => this.frameListeners.delete(listener);
  }

  /**
   * A left click on the map itself (not a drag, not inside an overlay or control), with its view coordinate.
   * Native clicks, not OpenLayers' emulated 'singleclick': OL can replay a stale press as a click when a
   * button inside an overlay is pressed, which turned the next real click into a double click (a zoom).
   */
  onClick(listener: (coordinate: [number, number]) => void): () => void {
    const viewport = this.map.getViewport();
    const onMap = (e: Event) => !(e.target instanceof Element && e.target.closest('.ol-overlay-container, .ol-control'));
    let press: { x: number; y: number } | null = null;
    const onPress = (e: PointerEvent) => {
      press = onMap(e) && e.isPrimary && e.button === 0 ? { x: e.clientX, y: e.clientY } : null;
    };
    const onRelease = (e: MouseEvent) => {
      const start = press;
      press = null;
      const isClick = start !== null && onMap(e) && Math.hypot(e.clientX - start.x, e.clientY - start.y) <= 4;
      if (!isClick) return;
      const [x, y] = this.map.getEventCoordinate(e);
      listener([x, y]);
    };
    viewport.addEventListener('pointerdown', onPress);
    viewport.addEventListener('click', onRelease);
    return () => {
      viewport.removeEventListener('pointerdown', onPress);
      viewport.removeEventListener('click', onRelease);
    };
  }

  /** Back to the Web Mercator map of georeferenced images. */
  showMap(): void {
    this.showGeoView();
    this.refreshVisibility();
  }

  private setFrame(pixelImage: string | null): void {
    if (this.activePixelImage === pixelImage) return;
    this.highlight.clear();
    this.markHighlight(null);
    this.region.clear();
    this.activePixelImage = pixelImage;
    // Pictures have no lon/lat: show their pixel coordinates (x right, y up from the bottom).
    const entry = pixelImage ? this.entries.get(pixelImage) : null;
    this.mousePosition.setProjection(entry?.pixelProjection ?? 'EPSG:4326');
    this.mousePosition.setCoordinateFormat(createStringXY(entry ? 0 : 5));
    for (const listener of this.frameListeners) listener(this.currentFrame());
  }

  /** Which frame the view shows: 'geo', or the id of the picture shown in pixel space. */
  currentFrame(): string {
    return this.activePixelImage ?? 'geo';
  }

  private showGeoView(): void {
    this.setFrame(null);
    if (this.map.getView() !== this.geoView) this.map.setView(this.geoView);
  }

  private refreshVisibility(): void {
    const inPixelFrame = this.activePixelImage !== null;
    for (const layer of this.basemap) layer.setVisible(!inPixelFrame);
    for (const [id, entry] of this.entries) {
      const inFrame = entry.pixelProjection ? id === this.activePixelImage : !inPixelFrame;
      entry.layer.setVisible(entry.userVisible && inFrame);
    }
  }

  private createGeoEntry(spec: ImageLayerSpec, geo: GeoReference): MapEntry {
    const projection = ensureProjection(geo);
    const { info } = spec;
    const extent = mercatorExtent(geo, info);
    if (!needsOwnWarp(geo, info)) {
      const source = this.createGeoTiffSource(spec, projection);
      const layer = new WebGLTileLayer({ source, style: displayStyle(info), properties: { imageId: spec.id } });
      return { layer, info, pixelProjection: null, extent, userVisible: true };
    }
    // Warp the preview onto Web Mercator ourselves, with x continuing past the world's edge so
    // that antimeridian-crossing images stay in one piece.
    const toPixel = lonLatToPixel(geo);
    const mapToPixel = (x: number, y: number) => toPixel(unwrappedLon(x), toLonLat([x, y])[1]);
    const warped = warpPreview(spec.preview, info.width, info.height, extent as [number, number, number, number], mapToPixel, WARP_MAX_SIDE);
    const layer = new ImageLayer({
      source: new ImageStatic({ url: toCanvasUrl(warped.image), imageExtent: warped.extent, projection: WEB_MERCATOR }),
      properties: { imageId: spec.id },
    });
    return { layer, info, pixelProjection: null, extent, userVisible: true };
  }

  private createGeoTiffSource(spec: ImageLayerSpec, projection: string): GeoTIFFSource {
    const { info, displayRange } = spec;
    const colourBands = colourBandsOf(info).map((b) => b + 1);
    const bands = info.alphaBand !== null ? [...colourBands, info.alphaBand + 1] : colourBands;
    // With an alpha band, nodata is left to it: OpenLayers would otherwise add a second alpha band.
    const nodata = info.alphaBand === null ? (info.nodata ?? undefined) : undefined;
    // OpenLayers wants ranges indexed by the file's band numbers; ours are per display channel.
    const min: number[] = [];
    const max: number[] = [];
    info.rgbBands.forEach((band, channel) => {
      min[band] = displayRange ? displayRange.min[channel] : 0;
      max[band] = displayRange ? displayRange.max[channel] : 255;
    });
    if (info.alphaBand !== null) {
      min[info.alphaBand] = 0;
      max[info.alphaBand] = 255;
    }
    return new GeoTIFFSource({
      sources: [{ blob: spec.file, bands, min, max, nodata }],
      projection,
      convertToRGB: 'auto',
      interpolate: true,
      transition: 0,
    });
  }

  private createPictureEntry(spec: ImageLayerSpec): MapEntry {
    const { width, height } = spec.info;
    const projection = pixelProjection(spec.id, width, height);
    const extent: Extent = [0, 0, width, height];
    const url = URL.createObjectURL(spec.file);
    const layer = new ImageLayer({
      source: new ImageStatic({ url, imageExtent: extent, projection, interpolate: true }),
      properties: { imageId: spec.id },
    });
    return { layer, info: spec.info, pixelProjection: projection, extent, userVisible: true, dispose: () => URL.revokeObjectURL(url) };
  }
}
