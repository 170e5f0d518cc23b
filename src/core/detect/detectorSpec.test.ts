import { describe, expect, it } from 'vitest';
import { ASSUMED_GROUND_RESOLUTION, modelScaleFor, parseDetectorSpec } from './detectorSpec';
import { testSpec } from './testing';

describe('detector spec', () => {
  it('reads the exported metadata; names a missing field', () => {
    const spec = testSpec();
    expect(spec).toMatchObject({ classes: ['car', 'large_vehicle', 'ship'], tileSize: 416, overlap: 104, padValue: 114, confEval: 0.01, nmsIou: 0.5, maxDets: 1000 });
    expect(spec.groundResolution).toEqual(ASSUMED_GROUND_RESOLUTION);
    expect(() => parseDetectorSpec({ classes: ['car'] })).toThrow(/"input.name"/);
  });

  it('resamples toward the ground resolution only outside the trained band, within limits', () => {
    const ground = ASSUMED_GROUND_RESOLUTION; // 0.15 m, band 0.1–0.2
    expect(modelScaleFor(null, ground).scale).toBe(1);
    expect(modelScaleFor(0.15, ground).scale).toBe(1);
    expect(modelScaleFor(0.3, ground).scale).toBeCloseTo(0.5, 12); // upsample ×2
    expect(modelScaleFor(0.35, ground).scale).toBe(0.5); // limited to ×2
    expect(modelScaleFor(0.05, ground).scale).toBeCloseTo(3, 12); // a drone image at 5 cm: ×1/3
    expect(modelScaleFor(0.35, ground).note).toMatch(/resampled ×2.*limited/);
    const declared = parseDetectorSpec({ ...rawMeta(), ground_resolution_m: [0.1, 0.4] }).groundResolution;
    expect(declared).toEqual({ metres: 0.2, band: [0.1, 0.4], origin: 'metadata' });
  });
});

function rawMeta() {
  return {
    classes: ['car'],
    input: { name: 'images', pad_value: 114 },
    output: { name: 'output' },
    slicing: { tile: 416, overlap: 104 },
    thresholds: { conf_eval: 0.01, conf_display: 0.3, nms_iou: 0.5, max_dets: 1000 },
  };
}
