// ONNX (onnxruntime-node) vs PyTorch check of the exported caption/VQA graphs.
//   node models/caption/check_onnx.mjs [folder with the exported files, default models/caption]
// Reads models/runs/caption/parity/reference.json (written by models.caption.export) and checks:
//  - router and query module outputs vs PyTorch (max abs diff)
//  - each expert: full-sequence call (P = 0) vs PyTorch logits/gate
//  - each expert: incremental decoding (prefill the prompt, then 3 single-token steps with the
//    present_* outputs fed back as past_*) equals the full-sequence logits
// Writes the measured differences into caption.json ("onnx_check"); exits 1 on failure.
import { createRequire } from "module";
import fs from "fs";
import path from "path";
import { fileURLToPath } from "url";

const require = createRequire(import.meta.url);
const ort = require("onnxruntime-node");
const here = process.argv[2] ? path.resolve(process.argv[2]) : path.dirname(fileURLToPath(import.meta.url));
const runs = process.env.RSLENS_RUNS || path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "runs");
const ref = JSON.parse(fs.readFileSync(path.join(runs, "caption", "parity", "reference.json"), "utf8"));
const meta = JSON.parse(fs.readFileSync(path.join(here, "caption.json"), "utf8"));
const TOL = 1e-3;

const f32 = (r) => new ort.Tensor("float32", Float32Array.from(r.data), r.shape);
const i64 = (r) => new ort.Tensor("int64", BigInt64Array.from(r.data.map((x) => BigInt(x))), r.shape);
function maxDiff(a, b) {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  if (a.length !== b.length) return Infinity;
  return m;
}

const result = {};
let ok = true;
function record(name, d) {
  result[name] = d;
  const pass = d < TOL;
  ok = ok && pass;
  console.log(`${pass ? "ok  " : "FAIL"} ${name}: max abs diff ${d.toExponential(2)}`);
}

const router = await ort.InferenceSession.create(path.join(here, "caption-router.onnx"));
const r = await router.run({ instruction_ids: i64(ref.instruction_ids), instruction_mask: i64(ref.instruction_mask) });
record("router.instruction_embedding", maxDiff(r.instruction_embedding.data, ref.instruction_embedding.data));
record("router.expert_logits", maxDiff(r.expert_logits.data, ref.expert_logits.data));
record("router.task_logits", maxDiff(r.task_logits.data, ref.task_logits.data));

const query = await ort.InferenceSession.create(path.join(here, "caption-query.onnx"));
const q = await query.run({ grid: f32(ref.grid), instruction_embedding: f32(ref.instruction_embedding) });
record("query.query_features", maxDiff(q.query_features.data, ref.query_features.data));

const cfg = meta.params.config;
const L = cfg.layers, H = cfg.heads, dh = cfg.dim / cfg.heads;
const seq = ref.expert_sequence; // [N,T]
const [N, T] = seq.shape;
const V = meta.tokenizer.vocab_size;
const qf = f32(ref.query_features);
const emptyPast = () => {
  const o = {};
  for (let l = 0; l < L; l++) for (const kv of ["key", "value"]) o[`past_${kv}_${l}`] = new ort.Tensor("float32", new Float32Array(0), [N, H, 0, dh]);
  return o;
};
const slice = (s, a, b) => ({ shape: [N, b - a], data: Array.from({ length: N }, (_, n) => s.data.slice(n * T + a, n * T + b)).flat() });

for (let e = 0; e < meta.experts.length; e++) {
  const sess = await ort.InferenceSession.create(path.join(here, `caption-expert${e}.onnx`));
  const full = await sess.run({ input_ids: i64(seq), query_features: qf, ...emptyPast() });
  record(`expert${e}.full.logits`, maxDiff(full.logits.data, ref[`expert${e}_logits`].data));
  record(`expert${e}.full.gate`, maxDiff(full.gate.data, ref[`expert${e}_gate`].data));
  // incremental: prefill T-3 tokens, then 3 single steps
  const P0 = T - 3;
  let past = emptyPast();
  let out = await sess.run({ input_ids: i64(slice(seq, 0, P0)), query_features: qf, ...past });
  let worst = 0;
  for (let t = P0; t < T; t++) {
    past = {};
    for (let l = 0; l < L; l++) for (const kv of ["key", "value"]) past[`past_${kv}_${l}`] = out[`present_${kv}_${l}`];
    out = await sess.run({ input_ids: i64(slice(seq, t, t + 1)), query_features: qf, ...past });
    for (let n = 0; n < N; n++) {
      const a = out.logits.data.slice(n * V, (n + 1) * V);
      const b = full.logits.data.slice((n * T + t) * V, (n * T + t + 1) * V);
      worst = Math.max(worst, maxDiff(a, b));
    }
  }
  record(`expert${e}.incremental3_vs_full.logits`, worst);
  if (out[`present_key_0`].dims[2] !== T) { ok = false; console.log("FAIL present length", out[`present_key_0`].dims); }
}

// ---- end-to-end greedy decoding with the documented recipe (router -> query -> experts, fused)
const EOS = meta.tokenizer.eos_id, BOS = meta.tokenizer.bos_id, ROLE = meta.tokenizer.role_id;
const experts = [];
for (let e = 0; e < meta.experts.length; e++) experts.push(await ort.InferenceSession.create(path.join(here, `caption-expert${e}.onnx`)));
const gridT = f32(ref.grid);
const nImg = ref.grid.shape[0];
async function decode(promptIds, mode, maxNew) {
  const ids = { shape: [nImg, promptIds.length], data: Array(nImg).fill(promptIds).flat() };
  const rr = await router.run({ instruction_ids: i64(ids), instruction_mask: i64({ shape: ids.shape, data: ids.data.map(() => 1) }) });
  const qq = await query.run({ grid: gridT, instruction_embedding: rr.instruction_embedding });
  const E = experts.length;
  const elog = Array.from({ length: nImg }, (_, n) => Array.from(rr.expert_logits.data.slice(n * E, (n + 1) * E)));
  const logSoftmax = (a) => { const m = Math.max(...a); const s = Math.log(a.reduce((t, x) => t + Math.exp(x - m), 0)) + m; return a.map((x) => x - s); };
  const out = [];
  for (let n = 0; n < nImg; n++) {
    const qfN = new ort.Tensor("float32", qq.query_features.data.slice(n * qq.query_features.data.length / nImg, (n + 1) * qq.query_features.data.length / nImg), [1, ...qq.query_features.dims.slice(1)]);
    const prior = logSoftmax(elog[n]);
    const use = mode === "caption" ? [...Array(E).keys()] : [prior.indexOf(Math.max(...prior))];
    let inp = [ROLE, ...promptIds, BOS];
    const pasts = use.map(() => { const o = {}; for (let l = 0; l < L; l++) for (const kv of ["key", "value"]) o[`past_${kv}_${l}`] = new ort.Tensor("float32", new Float32Array(0), [1, H, 0, dh]); return o; });
    const gen = [];
    for (let t = 0; t < maxNew; t++) {
      const lps = [], gates = [];
      for (let i = 0; i < use.length; i++) {
        const o = await experts[use[i]].run({ input_ids: i64({ shape: [1, inp.length], data: inp }), query_features: qfN, ...pasts[i] });
        const T2 = inp.length;
        lps.push(logSoftmax(Array.from(o.logits.data.slice((T2 - 1) * V, T2 * V))));
        gates.push(o.gate.data[T2 - 1]);
        for (let l = 0; l < L; l++) for (const kv of ["key", "value"]) pasts[i][`past_${kv}_${l}`] = o[`present_${kv}_${l}`];
      }
      let best = 0, bestV = -Infinity;
      if (use.length === 1) { for (let v = 0; v < V; v++) if (lps[0][v] > bestV) { bestV = lps[0][v]; best = v; } }
      else {
        const w = logSoftmax(gates.map((g, i) => g + prior[use[i]]));
        for (let v = 0; v < V; v++) { let s = 0; for (let i = 0; i < use.length; i++) s += Math.exp(w[i] + lps[i][v]); if (s > bestV) { bestV = s; best = v; } }
      }
      if (best === EOS) break;
      gen.push(best);
      inp = [best];
    }
    out.push(gen);
  }
  return out;
}
const capIds = await decode(ref.e2e_caption_prompt, "caption", meta.max_new_tokens);
const ansIds = await decode(ref.e2e_question_ids, "question", 6);
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const e2eOk = same(capIds, ref.e2e_caption_ids) && same(ansIds, ref.e2e_answer_ids);
ok = ok && e2eOk;
console.log(`${e2eOk ? "ok  " : "FAIL"} end-to-end greedy decode (2 val images): captions ${JSON.stringify(ref.e2e_captions)}, answers ${JSON.stringify(ref.e2e_answers)} ${e2eOk ? "identical token ids" : JSON.stringify({ capIds, ansIds })}`);
result.e2e_greedy_identical_ids = e2eOk;

meta.onnx_check = { runtime: "onnxruntime-node", tolerance: TOL, max_abs_diff: result, passed: ok };
fs.writeFileSync(path.join(here, "caption.json"), JSON.stringify(meta, null, 1) + "\n");
console.log(ok ? "all checks passed" : "CHECKS FAILED");
process.exit(ok ? 0 : 1);
