import { create } from 'zustand';
import type { RasterInfo } from '../../core/raster/types';
import type { LonLat } from '../../core/geo/footprint';

/** Georeferenced images sit on the Earth; the others are shown in their own pixel frame. */
export type ImageKind = 'georeferenced' | 'pixel';

/** One loaded image, as the panel and other features see it (plain data, no handles). */
export interface LoadedImage {
  id: string;
  name: string;
  byteSize: number;
  kind: ImageKind;
  info: RasterInfo;
  /** Lon/lat corners (clockwise from top-left) for georeferenced images, else null. */
  footprint: LonLat[] | null;
  /** Object URL of a small preview, revoked on removal. */
  thumbnailUrl: string | null;
  visible: boolean;
}

export interface LoadProblem {
  id: string;
  fileName: string;
  message: string;
}

interface LayersState {
  images: LoadedImage[];
  pending: { id: string; name: string }[];
  problems: LoadProblem[];
  selectedId: string | null;
  addPending: (id: string, name: string) => void;
  addImage: (image: LoadedImage) => void;
  addProblem: (problem: LoadProblem) => void;
  settle: (id: string) => void;
  removeImage: (id: string) => void;
  setVisible: (id: string, visible: boolean) => void;
  select: (id: string | null) => void;
  dismissProblem: (id: string) => void;
}

export const useLayersStore = create<LayersState>()((set) => ({
  images: [],
  pending: [],
  problems: [],
  selectedId: null,
  addPending: (id, name) => set((s) => ({ pending: [...s.pending, { id, name }] })),
  addImage: (image) => set((s) => ({ images: [...s.images, image] })),
  addProblem: (problem) => set((s) => ({ problems: [...s.problems, problem] })),
  settle: (id) => set((s) => ({ pending: s.pending.filter((p) => p.id !== id) })),
  removeImage: (id) =>
    set((s) => ({ images: s.images.filter((i) => i.id !== id), selectedId: s.selectedId === id ? null : s.selectedId })),
  setVisible: (id, visible) => set((s) => ({ images: s.images.map((i) => (i.id === id ? { ...i, visible } : i)) })),
  select: (id) => set({ selectedId: id }),
  dismissProblem: (id) => set((s) => ({ problems: s.problems.filter((p) => p.id !== id) })),
}));
