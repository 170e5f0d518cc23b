/** A detected object: an axis-aligned box in full-res image pixels (x right, y down). */
export interface Detection {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
  score: number;
  /** Index into the detector's classes. */
  classIndex: number;
}
