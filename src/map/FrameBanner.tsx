import { useEffect, useState } from 'react';
import type { MapController } from './mapController';

/** Says when the view shows a picture in its own pixel frame, with a way back to the map. */
export function FrameBanner({ controller, nameOf }: { controller: MapController; nameOf: (id: string) => string | undefined }) {
  const [frame, setFrame] = useState(() => controller.currentFrame());
  useEffect(() => controller.onFrameChange(setFrame), [controller]);
  if (frame === 'geo') return null;
  return (
    <div className="frame-banner" data-testid="frame-banner">
      Showing <strong>{nameOf(frame) ?? 'a picture'}</strong> in pixel coordinates (not georeferenced)
      <button onClick={() => controller.showMap()}>Back to map</button>
    </div>
  );
}
