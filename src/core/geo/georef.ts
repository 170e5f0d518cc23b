/**
 * Georeferencing of a GeoTIFF image: CRS (as proj4) and pixel→CRS affine transform.
 * Handles ModelTransformation, tiepoint + pixel scale, PixelIsPoint, non-metre units,
 * user-defined projections without an EPSG code, and GCP-only files (best-fit affine).
 */
import type { GeoTIFFImage } from 'geotiff';
import { toProj4, type GeoKeys } from 'geotiff-geokeys-to-proj4';
import type { GeoReference, GeoTransform } from '../raster/types';
import { fitAffine, type ControlPoint } from './affine';

export interface GeoReferenceResult {
  geo: GeoReference | null;
  pixelSizeMetres: number | null;
  geoNote: string | null;
}

const USER_DEFINED = 32767;
const RASTER_PIXEL_IS_POINT = 2;
const METRES_PER_DEGREE = 111_320;

type TagReader = (name: string) => unknown;

function tagReader(image: GeoTIFFImage): TagReader {
  const dir = image.fileDirectory as unknown as { getValue?: (n: string) => unknown } & Record<string, unknown>;
  // geotiff.js 3 exposes tags through getValue(); older versions as plain properties.
  return (name) => (typeof dir.getValue === 'function' ? dir.getValue(name) : dir[name]);
}

function numbers(value: unknown): number[] | null {
  if (value == null) return null;
  if (Array.isArray(value) || ArrayBuffer.isView(value)) return Array.from(value as ArrayLike<number>, Number);
  return null;
}

/** Pixel-corner affine from the file's tags, or control points when only GCPs are given. */
function readTransform(tags: TagReader): { transform: GeoTransform | null; fromGcps: number } {
  const matrix = numbers(tags('ModelTransformation'));
  if (matrix && matrix.length >= 8) {
    return { transform: [matrix[3], matrix[0], matrix[1], matrix[7], matrix[4], matrix[5]], fromGcps: 0 };
  }
  const tie = numbers(tags('ModelTiepoint'));
  const scale = numbers(tags('ModelPixelScale'));
  if (tie && tie.length >= 6 && scale && scale.length >= 2) {
    const [i, j, , x, y] = tie;
    const [sx, sy] = scale;
    return { transform: [x - i * sx, sx, 0, y + j * sy, 0, -sy], fromGcps: 0 };
  }
  if (tie && tie.length >= 18) {
    const points: ControlPoint[] = [];
    for (let k = 0; k + 5 < tie.length; k += 6) {
      points.push({ col: tie[k], row: tie[k + 1], x: tie[k + 3], y: tie[k + 4] });
    }
    const transform = fitAffine(points);
    return { transform, fromGcps: transform ? points.length : 0 };
  }
  return { transform: null, fromGcps: 0 };
}

function epsgOf(keys: Partial<GeoKeys>): number | null {
  const code = keys.ProjectedCSTypeGeoKey ?? keys.GeographicTypeGeoKey;
  return typeof code === 'number' && code > 0 && code !== USER_DEFINED ? code : null;
}

/** Ground size of one pixel in metres, measured at the image centre. */
function pixelSizeOf(transform: GeoTransform, isGeographic: boolean, centreY: number): number {
  const [, b, c, , e, f] = transform;
  const sizeX = Math.hypot(b, e);
  const sizeY = Math.hypot(c, f);
  if (!isGeographic) return Math.sqrt(sizeX * sizeY);
  const lat = (centreY * Math.PI) / 180;
  return Math.sqrt(sizeX * METRES_PER_DEGREE * Math.cos(lat) * sizeY * METRES_PER_DEGREE);
}

const CT_POLAR_STEREOGRAPHIC = 15;

/**
 * GeoTIFF stores coordinates east/north (x = lon) whatever the EPSG axis order, so the axis
 * hint is dropped. Polar stereographic keys name the latitude of true scale (variant B),
 * which the converter reads as the origin latitude: rebuild that definition.
 */
function normaliseProj4(definition: string, keys: Partial<GeoKeys>): string {
  let def = definition.replace(/\s*\+axis=\w+/g, '');
  if (keys.ProjectedCSTypeGeoKey === USER_DEFINED && keys.ProjCoordTransGeoKey === CT_POLAR_STEREOGRAPHIC) {
    const latTs = Number(keys.ProjNatOriginLatGeoKey ?? 90);
    const lon0 = Number(keys.ProjStraightVertPoleLongGeoKey ?? keys.ProjNatOriginLongGeoKey ?? 0);
    const k = Number(keys.ProjScaleAtNatOriginGeoKey ?? 1);
    const pole = latTs < 0 ? -90 : 90;
    def = def
      .replace(/\+lat_0=\S+/, `+lat_0=${pole} +lat_ts=${latTs}`)
      .replace(/\+k_0=\S+/, `+k_0=${k}`);
    def = /\+lon_0=/.test(def) ? def.replace(/\+lon_0=\S+/, `+lon_0=${lon0}`) : def.replace('+proj=stere', `+proj=stere +lon_0=${lon0}`);
  }
  return def.trim();
}

const GEO_TAGS = ['ModelTiepoint', 'ModelPixelScale', 'ModelTransformation', 'GeoKeyDirectory', 'GeoDoubleParams', 'GeoAsciiParams'];

/**
 * geotiff.js defers large tag arrays (e.g. thousands of GCP tiepoints) until asked for:
 * load them so that the synchronous reader below sees every value.
 */
export async function loadGeoTags(image: GeoTIFFImage): Promise<void> {
  const dir = image.fileDirectory as unknown as { hasTag?: (n: string) => boolean; loadValue?: (n: string) => Promise<unknown> };
  if (typeof dir.loadValue !== 'function') return;
  for (const name of GEO_TAGS) {
    if (dir.hasTag?.(name) ?? true) await dir.loadValue(name);
  }
}

export function readGeoReference(image: GeoTIFFImage): GeoReferenceResult {
  const tags = tagReader(image);
  const keys = (image.getGeoKeys() ?? null) as Partial<GeoKeys> | null;
  const { transform: rawTransform, fromGcps } = readTransform(tags);
  if (!rawTransform) {
    return { geo: null, pixelSizeMetres: null, geoNote: keys ? 'CRS declared but no pixel-to-map transform' : null };
  }
  if (!keys) {
    return { geo: null, pixelSizeMetres: null, geoNote: 'transform present but no CRS (GeoKeys missing)' };
  }
  let projection;
  try {
    projection = toProj4(keys as GeoKeys);
  } catch (err) {
    return { geo: null, pixelSizeMetres: null, geoNote: `unsupported CRS: ${(err as Error).message}` };
  }
  const failed = Object.keys(projection.errors ?? {});
  if (!projection.proj4 || failed.length > 0 && failed.some((k) => /NotSupported/.test(k))) {
    return { geo: null, pixelSizeMetres: null, geoNote: `unsupported CRS (${failed.join(', ') || 'no proj4 definition'})` };
  }

  const proj4 = normaliseProj4(projection.proj4, keys);
  let transform = rawTransform;
  if ((keys as { GTRasterTypeGeoKey?: number }).GTRasterTypeGeoKey === RASTER_PIXEL_IS_POINT && fromGcps === 0) {
    // Tiepoints refer to pixel centres: move the origin to the pixel corner.
    const [a, b, c, d, e, f] = transform;
    transform = [a - 0.5 * b - 0.5 * c, b, c, d - 0.5 * e - 0.5 * f, e, f];
  }
  if (projection.shouldConvertCoordinates) {
    // e.g. US survey feet: fold the unit factor into the affine so proj4 sees metres/degrees.
    const { x: kx, y: ky } = projection.coordinatesConversionParameters;
    const [a, b, c, d, e, f] = transform;
    transform = [a * kx, b * kx, c * kx, d * ky, e * ky, f * ky];
  }

  const centreY = transform[3] + transform[4] * (image.getWidth() / 2) + transform[5] * (image.getHeight() / 2);
  const notes: string[] = [];
  if (fromGcps > 0) notes.push(`placed by a best-fit affine through ${fromGcps} ground control points (approximate)`);
  const epsg = epsgOf(keys);
  if (epsg === null) notes.push('user-defined CRS without an EPSG code');
  return {
    geo: { proj4, epsg, transform, method: fromGcps > 0 ? 'gcp-fit' : 'declared' },
    pixelSizeMetres: pixelSizeOf(transform, projection.isGCS, centreY),
    geoNote: notes.length ? notes.join('; ') : null,
  };
}
