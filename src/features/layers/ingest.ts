import { openRasterFile } from '../../io/openRasterFile';
import { rgbaToObjectUrl } from '../../io/rgbaImageUrl';
import { readRgbaWindow } from '../../core/raster/readWindow';
import { computeStretch } from '../../core/raster/stretch';
import { footprintLonLat } from '../../core/geo/footprint';
import type { RasterSource, RgbaImage } from '../../core/raster/types';
import type { DisplayRange, MapController } from '../../map/mapController';
import { useLayersStore, type LoadedImage } from './layersStore';
import { imageRegistry } from './imageRegistry';

const PREVIEW_MAX_SIDE = 1024;
const THUMBNAIL_MAX_SIDE = 128;

function fitInside(width: number, height: number, maxSide: number): [number, number] {
  const scale = Math.min(1, maxSide / Math.max(width, height));
  return [Math.max(1, Math.round(width * scale)), Math.max(1, Math.round(height * scale))];
}

function thumbnailUrl(preview: RgbaImage): Promise<string> {
  const [w, h] = fitInside(preview.width, preview.height, THUMBNAIL_MAX_SIDE);
  return rgbaToObjectUrl(preview, w, h);
}

/** Display range for the map renderer: the models' stretch, expressed per band. */
async function displayRangeOf(source: RasterSource): Promise<DisplayRange | null> {
  if (source.info.sampleKind === 'uint8') return null;
  const stretch = await computeStretch(source);
  return { min: stretch.low, max: stretch.high };
}

function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

let counter = 0;

/**
 * Loads one dropped or picked file as a map layer. Never throws: a file that cannot be
 * shown becomes a problem entry naming the file and the reason; other layers are untouched.
 */
export async function ingestFile(file: File, controller: MapController): Promise<string | null> {
  const store = useLayersStore.getState();
  const id = `img-${Date.now().toString(36)}-${(counter++).toString(36)}`;
  store.addPending(id, file.name);
  try {
    const source = await openRasterFile(file, file.name);
    const { info } = source;
    const [pw, ph] = fitInside(info.width, info.height, PREVIEW_MAX_SIDE);
    const preview = await readRgbaWindow(source, { x: 0, y: 0, width: info.width, height: info.height }, pw, ph);
    const displayRange = await displayRangeOf(source);
    controller.addImage({ id, file, info, preview, displayRange });
    imageRegistry.set(id, { file, source });
    const image: LoadedImage = {
      id,
      name: file.name,
      byteSize: file.size,
      kind: info.geo ? 'georeferenced' : 'pixel',
      info,
      footprint: info.geo ? footprintLonLat(info.geo, info.width, info.height) : null,
      thumbnailUrl: await thumbnailUrl(preview),
      visible: true,
    };
    useLayersStore.getState().addImage(image);
    return id;
  } catch (err) {
    controller.removeImage(id);
    imageRegistry.delete(id);
    useLayersStore.getState().addProblem({ id, fileName: file.name, message: describeError(err) });
    return null;
  } finally {
    useLayersStore.getState().settle(id);
  }
}

export async function ingestFiles(files: Iterable<File>, controller: MapController): Promise<void> {
  // One at a time: keeps memory bounded when a folder of large files is dropped.
  let lastLoaded: string | null = null;
  for (const file of files) lastLoaded = (await ingestFile(file, controller)) ?? lastLoaded;
  // Show what was just loaded.
  if (lastLoaded) controller.zoomTo(lastLoaded);
}

export function removeLoadedImage(id: string, controller: MapController): void {
  const image = useLayersStore.getState().images.find((i) => i.id === id);
  if (image?.thumbnailUrl) URL.revokeObjectURL(image.thumbnailUrl);
  controller.removeImage(id);
  imageRegistry.delete(id);
  useLayersStore.getState().removeImage(id);
}
