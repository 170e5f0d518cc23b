import { useEffect, useRef } from 'react';
import type { MapController } from './mapController';

export function MapView({ controller }: { controller: MapController }) {
  const target = useRef<HTMLDivElement>(null);
  useEffect(() => {
    controller.setTarget(target.current!);
    return () => controller.setTarget(undefined);
  }, [controller]);
  return <div ref={target} className="map" data-testid="map" />;
}
