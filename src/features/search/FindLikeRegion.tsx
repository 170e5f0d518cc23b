/**
 * "Find places like this": the region picked on the map (the Ask box's dashed square) used as an
 * image → image query over the search index.
 */
import type { PixelWindow } from '../../core/raster/types';
import { useSearchStore } from './searchStore';

export function FindLikeRegionButton({ imageId, window, onDone }: { imageId: string; window: PixelWindow; onDone?: () => void }) {
  const indexed = useSearchStore((s) => s.items.length);
  return (
    <button
      className="chip"
      data-testid="find-like-region"
      title={indexed ? 'Rank the search index by likeness to this region' : 'Index the loaded images first (Search panel)'}
      disabled={indexed === 0}
      onClick={() => {
        void useSearchStore.getState().findLikeRegion(imageId, window);
        onDone?.();
      }}
    >
      Find places like this
    </button>
  );
}
