/**
 * ORT session settings every backend and the Node CLI share (plain data: no ORT import here).
 *
 * Our int8 model files store weights only (int8 + DequantizeLinear, float32 compute; see
 * models/rslens/int8_storage.py). By default ORT keeps DequantizeLinear nodes for QDQ fusion and
 * dequantises the weights on every run (about a third slower here); with QDQ handling off, constant
 * folding turns them back into float32 weights once, at load. No model of ours quantises activations.
 */
export const SESSION_CONFIG = { session: { disable_quant_qdq: '1' } } as const;
