"""Export the caption/VQA MoE (stage 2 checkpoint) to ONNX + metadata.

    /usr/bin/python3 -m models.caption.export        # then: node models/caption/check_onnx.mjs

Writes into models/caption/ (the image encoder is the shared retrieval image tower, exported by
models.retrieval.export; its `grid` output is the input of caption-query.onnx):
  caption-router.onnx   instruction_ids int64 [N,L], instruction_mask int64 [N,L] ->
                        instruction_embedding [N,d], expert_logits [N,E], task_logits [N,2]
  caption-query.onnx    grid float32 [N,1280,7,7], instruction_embedding [N,d] -> query_features [N,K,d]
  caption-expert{e}.onnx  one incremental decoding step (LoRA merged into the weights):
                        input_ids int64 [N,T], query_features [N,K,d],
                        past_key_{l}/past_value_{l} float32 [N,H,P,dh] (l = 0..layers-1; P = 0 at the start) ->
                        logits [N,T,V], gate [N,T], present_key_{l}/present_value_{l} [N,H,P+T,dh]
  caption.json          metadata (tokenizer, special ids, prompts, roles, shapes, decoding recipe, metrics)
  models/runs/caption/parity/reference.json (gitignored): inputs + PyTorch outputs for check_onnx.mjs
"""
from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import torch
import torch.nn as nn

from ..rslens import paths
from ..rslens.clip_tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from ..rslens.onnx_export import OPSET, export_onnx
from .data import CAPTION_INSTRUCTION, EXPERT_ROLES, TYPE_TO_EXPERT, VOCAB_PATH
from .model import LoRALinear
from .train import MAX_PROMPT, MAX_TARGET, Tok, load_stage

HERE = Path(__file__).resolve().parent


class RouterExport(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.r = model.router

    def forward(self, instruction_ids, instruction_mask):
        return self.r(instruction_ids, instruction_mask)


class QueryExport(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.q = model.qmod

    def forward(self, grid, instruction_embedding):
        return self.q(grid, instruction_embedding)


def standalone_expert(model, e: int):
    """Copy of expert e with LoRA merged and its own embedding table (role row = its role embedding)."""
    dec = copy.deepcopy(model.experts[e] if e >= 0 else model.dense)
    emb = nn.Embedding(model.embed.num_embeddings, model.embed.embedding_dim)
    emb.weight.data.copy_(model.embed.weight.data)
    if e >= 0:
        emb.weight.data[model.dense_role] = model.role[e].data
    dec.embed = emb
    for mod in list(dec.modules()):
        for name, ch in list(mod.named_children()):
            if isinstance(ch, LoRALinear):
                setattr(mod, name, LoRALinear(ch.merged(), 0))
    return dec.eval()


class StepExport(nn.Module):
    def __init__(self, dec, n_layers):
        super().__init__()
        self.dec = dec
        self.n = n_layers

    def forward(self, input_ids, query_features, *past):
        pk = [(past[2 * i], past[2 * i + 1]) for i in range(self.n)]
        logits, gate, pres = self.dec(input_ids, query_features, pk)
        flat = []
        for k, v in pres:
            flat += [k, v]
        return (logits, gate, *flat)


def tolist(t):
    return {"shape": list(t.shape), "data": t.detach().reshape(-1).tolist()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stage", type=int, default=2)
    ap.add_argument("--out", default=str(HERE), help="output folder (default models/caption)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    model, ck = load_stage(args.stage)
    model.eval()
    cfg = model.config
    tok = Tok()
    L, H, d = cfg["layers"], cfg["heads"], cfg["dim"]
    dh = d // H
    E = len(model.experts)
    par = {}

    # --- router + query module on real val images
    from .train import Features
    from .features import load_projected  # noqa: F401
    from ..rslens.data import read_split
    import numpy as np
    items = read_split("val", limit=2)
    gc = np.load(paths.cache_dir() / "rsicd_mnv2tfl_cut19" / "val_id.npy", mmap_mode="r")
    grid = torch.from_numpy(np.asarray(gc[:2], dtype=np.float32))
    texts = [CAPTION_INSTRUCTION, "how many cars are there?"]
    ids = [tok.ids(t) for t in texts]
    Lmax = max(len(x) for x in ids)
    ins = torch.tensor([x + [PAD_ID] * (Lmax - len(x)) for x in ids])
    im = torch.tensor([[1] * len(x) + [0] * (Lmax - len(x)) for x in ids])
    rex, qex = RouterExport(model).eval(), QueryExport(model).eval()
    with torch.no_grad():
        u, elog, tlog = rex(ins, im)
        qf = qex(grid, u)
    export_onnx(rex, (ins, im), out / "caption-router.onnx", ["instruction_ids", "instruction_mask"],
                ["instruction_embedding", "expert_logits", "task_logits"],
                extra_dynamic_axes={"instruction_ids": {1: "length"}, "instruction_mask": {1: "length"}},
                doc="RS Lens caption/VQA router (instruction -> experts).")
    export_onnx(qex, (grid, u), out / "caption-query.onnx", ["grid", "instruction_embedding"], ["query_features"],
                doc="RS Lens caption/VQA instruction-aware query module over the retrieval image-tower grid.")
    par.update(instruction_ids=tolist(ins), instruction_mask=tolist(im), grid=tolist(grid),
               instruction_embedding=tolist(u), expert_logits=tolist(elog), task_logits=tolist(tlog),
               query_features=tolist(qf))

    # --- experts: trace with P=3 past positions and T=2 new tokens
    in_names = ["input_ids", "query_features"] + [f"past_{kv}_{l}" for l in range(L) for kv in ("key", "value")]
    out_names = ["logits", "gate"] + [f"present_{kv}_{l}" for l in range(L) for kv in ("key", "value")]
    dyn = {"input_ids": {1: "step"}, "logits": {1: "step"}, "gate": {1: "step"}}
    for l in range(L):
        for kv in ("key", "value"):
            dyn[f"past_{kv}_{l}"] = {2: "past_length"}
            dyn[f"present_{kv}_{l}"] = {2: "total_length"}
    seq = torch.tensor([[model.dense_role] + tok.ids(CAPTION_INSTRUCTION) + [BOS_ID] +
                        tok.ids("many planes are parked next to a building")][:1] * 2)
    par["expert_sequence"] = tolist(seq)
    sizes = {}
    for e in range(E):
        dec = standalone_expert(model, e)
        step = StepExport(dec, L).eval()
        with torch.no_grad():
            _, _, pres = dec(seq[:, :3], qf)
            ex_in = (seq[:, 3:5], qf) + tuple(t for kv in pres for t in kv)
            ref_logits, ref_gate, _ = dec(seq, qf)
            # check: the in-graph path equals the training-time expert (LoRA unmerged, shared embedding)
            lg_train, gt_train, _ = model.experts[e](seq, qf, role_embed=model.role[e])
            diff = float((lg_train - ref_logits).abs().max())
            assert diff < 1e-4, f"merged expert {e} differs from the training expert by {diff}"
        path = out / f"caption-expert{e}.onnx"
        export_onnx(step, ex_in, path, in_names, out_names, extra_dynamic_axes=dyn,
                    doc=f"RS Lens caption/VQA expert {e} ({EXPERT_ROLES[e]}): one incremental decoding step.")
        par[f"expert{e}_logits"] = tolist(ref_logits)
        par[f"expert{e}_gate"] = tolist(ref_gate)
        sizes[path.name] = path.stat().st_size
    for n in ("caption-router.onnx", "caption-query.onnx"):
        sizes[n] = (out / n).stat().st_size
    # end-to-end greedy decode (documented recipe) on the raw grid, for check_onnx.mjs
    from .evaluate import generate
    cap_ids, _ = generate(model, grid, [tok.ids(CAPTION_INSTRUCTION)] * 2, "moe")
    par["e2e_caption_prompt"] = tok.ids(CAPTION_INSTRUCTION)
    par["e2e_caption_ids"] = cap_ids
    par["e2e_captions"] = [tok.decode(c) for c in cap_ids]
    qtxt = "how many planes are there?"
    qi = torch.tensor([tok.ids(qtxt)] * 2)
    _, el, _ = model.encode(grid, qi, torch.ones_like(qi))
    route = el.argmax(-1).tolist()
    ans_ids, _ = generate(model, grid, qi.tolist(), "expert", max_new=6, experts=route)
    par.update(e2e_question=qtxt, e2e_question_ids=tok.ids(qtxt), e2e_answer_ids=ans_ids, e2e_route=route,
               e2e_answers=[tok.decode(a) for a in ans_ids])
    print("e2e captions:", par["e2e_captions"], "| answers:", par["e2e_answers"], "experts", route)
    pdir = paths.runs_dir() / "caption" / "parity"
    pdir.mkdir(parents=True, exist_ok=True)
    with open(pdir / "reference.json", "w") as f:
        json.dump(par, f)

    prev = {}
    if (out / "caption.json").exists():
        prev = json.load(open(out / "caption.json"))
    metrics = {}
    for p in sorted(HERE.glob("metrics_stage*.json")):
        r = json.load(open(p))
        metrics[p.stem[len("metrics_"):]] = {
            "what": f"stage {r['stage']}{' ' + r['tag'] if r.get('tag') else ''}; grid: {r.get('eval_grid', 'frozen grid')}; "
                    f"decoding: {r.get('decoding')}",
            **{k: {"captioning": {m: v for m, v in x["captioning"].items()},
                   "vqa_accuracy": {t: y["accuracy"] for t, y in x["vqa"].items()}}
               for k, x in r["results"].items()}}
    meta = {
        "name": "rslens-caption-moe",
        "what": "captioning + VQA over the frozen MobileNetV2 grid: router -> instruction-aware query "
                "module -> 3 decoder experts (LoRA-specialised copies of a dense decoder) with learned fusion",
        "image_encoder": {"file": "image-encoder-fp16.onnx", "output_used": "grid float32 [N,1280,7,7]",
                          "note": "the frozen ImageNet MobileNetV2 (models.caption.export_encoder); run once per "
                                  "image; what the caption model was trained on (see MODEL_CARD.md 'grid source')"},
        "tokenizer": {"base": "shared tokenizers/clip/tokenizer.json (OpenAI CLIP byte-level BPE)",
                      "vocab": VOCAB_PATH.name, "format": "rslens-compact-clip-vocab-v1 (same scheme as "
                      "models/retrieval/vocab.json: compact id = 4 + index of the CLIP id in clip_ids)",
                      "vocab_size": tok.n_vocab, "pad_id": PAD_ID, "unk_id": UNK_ID, "bos_id": BOS_ID,
                      "eos_id": EOS_ID, "role_id": model.dense_role,
                      "encode": "compact(clip_bpe(text)) WITHOUT bos/eos (the CompactTokenizer ids with the first "
                                "and last element removed), truncated to max_prompt_tokens",
                      "detokenize": "drop ids < 4; id -> CLIP token string (clip_ids[id-4] -> tokenizer.json vocab); "
                                    "concatenate; replace '</w>' by ' '; map the byte-level unicode characters back "
                                    "to bytes (GPT-2/CLIP bytes_to_unicode inverse); UTF-8 decode; trim"},
        "max_prompt_tokens": MAX_PROMPT, "max_new_tokens": MAX_TARGET,
        "caption_instruction": CAPTION_INSTRUCTION,
        "experts": [{"index": e, "file": f"caption-expert{e}.onnx", "role": EXPERT_ROLES[e],
                     "prompt": "[role_id] + instruction ids + [bos_id] (the role token is embedded with this "
                               "expert's own learned role embedding)"} for e in range(E)],
        "question_types_to_expert": {k: v for k, v in TYPE_TO_EXPERT.items() if v is not None},
        "router": {"file": "caption-router.onnx",
                   "inputs": {"instruction_ids": "int64 [N,L] (padded with pad_id)",
                              "instruction_mask": "int64 [N,L] 1 = token"},
                   "outputs": {"instruction_embedding": f"float32 [N,{d}]", "expert_logits": f"float32 [N,{E}]",
                               "task_logits": "float32 [N,2] (0 = caption, 1 = question)"},
                   "use": "task = argmax(task_logits). caption: run ALL experts, prior = log_softmax(expert_logits). "
                          "question: run only argmax(expert_logits)."},
        "query_module": {"file": "caption-query.onnx",
                         "inputs": {"grid": "float32 [N,1280,7,7] (image-encoder output)",
                                    "instruction_embedding": f"float32 [N,{d}] (router output)"},
                         "outputs": {"query_features": f"float32 [N,{cfg['n_queries']},{d}]"}},
        "expert_step": {
            "inputs": {"input_ids": "int64 [N,T] new tokens (T = prompt length at the first call, then 1)",
                       "query_features": f"float32 [N,{cfg['n_queries']},{d}]",
                       **{f"past_{kv}_{l}": f"float32 [N,{H},P,{dh}] (P = 0 at the first call: empty tensors)"
                          for l in range(L) for kv in ("key", "value")}},
            "outputs": {"logits": f"float32 [N,T,{tok.n_vocab}]",
                        "gate": "float32 [N,T] fusion gate logit",
                        **{f"present_{kv}_{l}": f"float32 [N,{H},P+T,{dh}] -> next call's past_{kv}_{l}"
                           for l in range(L) for kv in ("key", "value")}},
            "positions": f"absolute position = P + t (max {cfg['max_pos']} in total)",
            "batching": "all rows of a batch must have the same prompt length (no attention mask)"},
        "decoding": {"caption": "greedy: at each step, for every expert e: lp_e = log_softmax(logits_e[:, -1]); "
                                "w = softmax_e(gate_e[:, -1] + log_softmax(expert_logits)_e); "
                                "next = argmax log(sum_e w_e exp(lp_e)); feed the same token to all experts; "
                                "stop at eos_id or max_new_tokens",
                     "caption_beam": "beam search (beam 3 reported in metrics_*_beam3.json): keep the 3 best partial "
                                     "captions by the SUM of fused log-probabilities (no length normalisation); a "
                                     "finished beam (eos) is only extended by eos at zero cost; reorder every "
                                     "expert's present_* along the batch axis with the surviving beams",
                     "question": "greedy with the routed expert only, max 6 new tokens"},
        "opset": OPSET,
        "files_bytes": sizes, "total_bytes": sum(sizes.values()),
        "params": {"total_checkpoint": ck.get("total_params"), "stage2_trainable": ck.get("trainable_params"),
                   "config": cfg},
        "val_metrics_pytorch": metrics,
        "grid_source": ck.get("grid_source"),
        "training_commands": ["/usr/bin/python3 -m models.retrieval.features",
                              "/usr/bin/python3 -m models.caption.data",
                              "/usr/bin/python3 -m models.caption.features",
                              "/usr/bin/python3 -m models.caption.train --stage 1",
                              "/usr/bin/python3 -m models.caption.train --stage 2",
                              "/usr/bin/python3 -m models.caption.evaluate --stage 1",
                              "/usr/bin/python3 -m models.caption.evaluate --stage 2 --ablation",
                              "/usr/bin/python3 -m models.caption.export",
                              "node models/caption/check_onnx.mjs"],
    }
    if "onnx_check" in prev:
        meta["onnx_check"] = prev["onnx_check"]
    with open(out / "caption.json", "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    for n, s in sizes.items():
        print(f"{n}: {s / 1e6:.2f} MB")
    print(f"total {sum(sizes.values()) / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
