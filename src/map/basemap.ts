import VectorLayer from 'ol/layer/Vector';
import VectorSource from 'ol/source/Vector';
import GeoJSON from 'ol/format/GeoJSON';
import Graticule from 'ol/layer/Graticule';
import { Fill, Stroke, Style } from 'ol/style';
import { feature } from 'topojson-client';
import type { Topology, GeometryCollection } from 'topojson-specification';
import countries from 'world-atlas/countries-110m.json';

/**
 * Offline context under the imagery: country outlines (Natural Earth 1:110m, public domain,
 * via world-atlas) and a graticule. The app never fetches map tiles.
 */
export function createBasemapLayers() {
  const topology = countries as unknown as Topology<{ countries: GeometryCollection }>;
  const geojson = feature(topology, topology.objects.countries);
  const source = new VectorSource({
    features: new GeoJSON().readFeatures(geojson, { featureProjection: 'EPSG:3857' }),
  });
  const land = new VectorLayer({
    source,
    style: new Style({ fill: new Fill({ color: '#2c3a4a' }), stroke: new Stroke({ color: '#5d7187', width: 0.8 }) }),
    properties: { basemap: true },
  });
  const graticule = new Graticule({
    strokeStyle: new Stroke({ color: 'rgba(200,210,230,0.25)', width: 1, lineDash: [2, 4] }),
    showLabels: true,
    wrapX: false,
    properties: { basemap: true },
  });
  return [land, graticule];
}
