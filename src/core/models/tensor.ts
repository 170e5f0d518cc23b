/**
 * ORT-independent tensor description, shared by workers (onnxruntime-web), the
 * Node CLI (onnxruntime-node) and the UI. Plain data so it crosses postMessage.
 */

export const TENSOR_DTYPES = ['float32', 'float16', 'int32', 'int64', 'uint8', 'int8', 'bool'] as const;
export type TensorDtype = (typeof TENSOR_DTYPES)[number];

/** A dimension is a fixed size or a symbolic name (e.g. "batch") resolved at run time. */
export type Dim = number | string;

/** What a model input/output looks like, as declared in the manifest. */
export interface TensorSpec {
  name: string;
  dtype: TensorDtype;
  shape: Dim[];
}

export type TensorValues = Float32Array | Uint16Array | Int32Array | BigInt64Array | Uint8Array | Int8Array;

export interface TensorData {
  dtype: TensorDtype;
  dims: number[];
  data: TensorValues;
}

export type TensorMap = Record<string, TensorData>;

export function elementCount(dims: readonly number[]): number {
  return dims.reduce((n, d) => n * d, 1);
}

/** Concrete dims for a spec: symbolic dims become `symbolicSize` (1 for a warm-up run). */
export function concreteDims(spec: TensorSpec, symbolicSize = 1): number[] {
  return spec.shape.map((d) => (typeof d === 'number' ? d : symbolicSize));
}

function allocate(dtype: TensorDtype, count: number): TensorValues {
  switch (dtype) {
    case 'float32':
      return new Float32Array(count);
    case 'float16':
      return new Uint16Array(count); // raw IEEE half bits; 0 is 0.0
    case 'int32':
      return new Int32Array(count);
    case 'int64':
      return new BigInt64Array(count);
    case 'uint8':
    case 'bool':
      return new Uint8Array(count);
    case 'int8':
      return new Int8Array(count);
  }
}

/** A zero-filled tensor matching the spec: the dummy input used to warm up a session. */
export function zeroTensor(spec: TensorSpec, symbolicSize = 1): TensorData {
  const dims = concreteDims(spec, symbolicSize);
  return { dtype: spec.dtype, dims, data: allocate(spec.dtype, elementCount(dims)) };
}

/** Tensor as stored in reference JSON files: numbers in row-major order. */
export interface JsonTensor {
  dtype: TensorDtype;
  dims: number[];
  data: number[];
}

export function tensorFromJson(json: JsonTensor): TensorData {
  const count = elementCount(json.dims);
  if (json.data.length !== count) {
    throw new Error(`tensor data has ${json.data.length} values but dims [${json.dims.join(', ')}] need ${count}`);
  }
  const data = allocate(json.dtype, count);
  if (data instanceof BigInt64Array) json.data.forEach((v, i) => (data[i] = BigInt(Math.round(v))));
  else data.set(json.data);
  return { dtype: json.dtype, dims: [...json.dims], data };
}

/** Numbers of a tensor as a plain array (int64 converted, float16 left as bits). */
export function tensorValues(t: TensorData): number[] {
  return Array.from(t.data as ArrayLike<number | bigint>, Number);
}

/** Largest |a − b| over all elements; throws when shapes differ. */
export function maxAbsDiff(a: TensorData, b: TensorData): number {
  if (a.dims.join('x') !== b.dims.join('x')) {
    throw new Error(`shape mismatch: [${a.dims.join(', ')}] vs [${b.dims.join(', ')}]`);
  }
  const av = tensorValues(a);
  const bv = tensorValues(b);
  let max = 0;
  for (let i = 0; i < av.length; i++) {
    const d = Math.abs(av[i] - bv[i]);
    if (Number.isNaN(d)) return NaN; // a NaN output never passes a tolerance check
    if (d > max) max = d;
  }
  return max;
}
