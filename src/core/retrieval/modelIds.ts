/** Manifest ids of the retrieval family: one place for the app's search slice and the CLI. */
export const IMAGE_TOWER = 'retrieval-image';
export const TEXT_TOWER = 'retrieval-text';
/** Per-image hubness penalty for text → image scores (see models/retrieval/MODEL_CARD.md). */
export const HUBNESS = 'retrieval-hubness';
