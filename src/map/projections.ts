import proj4 from 'proj4';
import { register } from 'ol/proj/proj4';
import { addProjection, get as getProjection } from 'ol/proj';
import Projection from 'ol/proj/Projection';
import type { GeoReference } from '../core/raster/types';

/** djb2 over the definition: a stable code for CRSs that have no EPSG code. */
function hashCode(text: string): string {
  let h = 5381;
  for (let i = 0; i < text.length; i++) h = ((h << 5) + h + text.charCodeAt(i)) | 0;
  return (h >>> 0).toString(36);
}

/**
 * Makes the image CRS known to OpenLayers (through proj4) and returns its code.
 * No network lookup: the definition comes from the file's own GeoKeys.
 */
export function ensureProjection(geo: GeoReference): string {
  const code = geo.epsg !== null ? `EPSG:${geo.epsg}` : `RSLENS:${hashCode(geo.proj4)}`;
  if (!getProjection(code)) {
    proj4.defs(code, geo.proj4);
    register(proj4);
  }
  return code;
}

/** A per-image pixel projection for images without georeferencing (y up, origin bottom-left). */
export function pixelProjection(imageId: string, width: number, height: number): Projection {
  const projection = new Projection({ code: `pixel:${imageId}`, units: 'pixels', extent: [0, 0, width, height] });
  // Registered so that controls (mouse position) find the identity transform to itself.
  addProjection(projection);
  return projection;
}
