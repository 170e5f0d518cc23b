import { useEffect, useRef } from 'react';
import OlMap from 'ol/Map';
import View from 'ol/View';

export function MapView() {
  const target = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const map = new OlMap({ target: target.current!, view: new View({ center: [0, 0], zoom: 2 }) });
    return () => map.setTarget(undefined);
  }, []);
  return <div ref={target} className="map" data-testid="map" />;
}
