/** Test helpers for the detect core: a spec like the exported detector's metadata. */
import { parseDetectorSpec, type DetectorSpec } from './detectorSpec';

export function testSpec(overrides: Partial<DetectorSpec> = {}): DetectorSpec {
  const spec = parseDetectorSpec({
    classes: ['car', 'large_vehicle', 'ship'],
    class_merge: { car: ['aerial-cars car'], large_vehicle: ['aerial-cars bus', 'aerial-cars minibus', 'aerial-cars truck'], ship: ['DOTA ship'] },
    input: { name: 'images', pad_value: 114 },
    output: { name: 'output' },
    slicing: { tile: 416, overlap: 104 },
    thresholds: { conf_eval: 0.01, conf_display: 0.3, nms_iou: 0.5, max_dets: 1000 },
  });
  return { ...spec, ...overrides };
}
