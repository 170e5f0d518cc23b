import type { TensorNormalisation } from '../raster/readWindow';
import type { ModelEntry } from './manifest';

/** Model input size and tensor normalisation as the manifest declares them. */
export function imageInputOf(entry: ModelEntry): { width: number; height: number; norm: TensorNormalisation } {
  const pre = entry.preprocessing;
  if (!pre?.inputSize) throw new Error(`Model "${entry.id}" declares no preprocessing.inputSize`);
  const [width, height] = pre.inputSize;
  const triple = (v: number[] | undefined, fallback: number): [number, number, number] =>
    v && v.length === 3 ? [v[0], v[1], v[2]] : [fallback, fallback, fallback];
  return {
    width,
    height,
    norm: {
      mean: triple(pre.mean, 0),
      std: triple(pre.std, 1),
      scale: pre.scale ?? 1,
      layout: pre.layout === 'NHWC' ? 'nhwc' : 'nchw',
      channelOrder: pre.channelOrder === 'BGR' ? 'bgr' : 'rgb',
    },
  };
}

/** True when the first input's batch dimension is symbolic (the model takes N images at once). */
export function hasDynamicBatch(entry: ModelEntry): boolean {
  const first = entry.inputs[0]?.shape[0];
  return typeof first !== 'number' || first < 1;
}
