"""The backbone fine-tune (models.retrieval.finetune) as one prepared job for a lent GPU machine.

Such a machine (the `device` tool, lent to some sessions only) has no ../shared, and one call carries
at most 64 MiB: the working tree plus the paths it names. RSICD train alone is ~120 MB of JPEG, and
re-encoding it smaller costs accuracy (the shipped towers score val mR 20.14 instead of 22.24 on val
images re-encoded at 192 px, WebP quality 60). So the inputs travel unchanged, split in parts over
consecutive calls to one warm machine, and the trained weights come back without the frozen
ImageNet backbone (rebuilt from the TFLite file on either side).

Here:    /usr/bin/python3 -m models.retrieval.device_job pack       # .device/part-1..N (gitignored), sizes printed
         /usr/bin/python3 -m models.retrieval.device_job park       # tracked *.onnx out of the working tree (~75 MB)
Device:  one `run` per part, carry [".device/part-K"], back to back (a machine stays warm 30 s):
           python3 -m models.retrieval.device_job receive --part 1 --check     # + the 2-step check below
           python3 -m models.retrieval.device_job receive --part 2
           python3 -m models.retrieval.device_job receive --part 3 && python3 -m models.retrieval.device_job train --budget-min 5
Here:    /usr/bin/python3 -m models.retrieval.device_job restore    # the *.onnx back from git
         /usr/bin/python3 -m models.retrieval.device_job unpack --from FILES_AT   # run folders in models/runs/

`receive --check` (or `train`, when no check passed yet) runs a 2-step check of the whole path on the
first 256 train images: a PyTorch-version break shows in seconds. `train` then runs the members side by side on the one GPU, each its own process: every init run packed
(default: the two v0.2.0 stage-1 members), at each seed offset of --seeds, with the finetune flags of
--finetune-args. Members write `member-<init>-s<seed>.pt` (float16, 12.6 MB for features[1:]) and one
merged log to $OUT. A machine that went cold between the calls lost the received parts: `train` says which
are missing.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import torch

from ..rslens import paths

PACK_DIR = paths.REPO_ROOT / ".device"
RECEIVED = Path("/tmp/rslens-device")  # on the device machine: the parts, merged
WEIGHTS_FORMAT = "rslens-retrieval-trained-weights/1"


def save_trained_weights(model, path: Path, meta: Dict, reference: Optional[Dict[str, torch.Tensor]] = None) -> None:
    """The model's trained tensors only, as float16: every tensor that differs from `reference` (the
    init run's state, which the receiving side has too), or, without one, from a fresh model of the same
    config (the frozen ImageNet backbone, rebuilt from the TFLite file)."""
    from .model import RetrievalModel
    cfg = dict(model.config)
    if reference is None:
        reference = RetrievalModel(cfg.pop("vocab_size"), str(paths.mobilenet_tflite()), **cfg).state_dict()
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    kept = {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()
            if k not in reference or reference[k].shape != v.shape or not torch.equal(reference[k].to(v.dtype), v)}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": WEIGHTS_FORMAT, "model_config": model.config, "tensors": kept,
                "relative_to": "init" if meta.get("init_run") else "tflite",
                "meta": json.loads(json.dumps(meta, default=str))}, path)


def load_trained_weights(path: Path, reference: Optional[Dict[str, torch.Tensor]] = None):
    """-> (RetrievalModel in float32 with the trained tensors, the saved meta). A file saved relative to
    its init run needs that run's state as `reference`."""
    from .model import RetrievalModel
    saved = torch.load(path, map_location="cpu", weights_only=False)
    if saved.get("format") != WEIGHTS_FORMAT:
        raise ValueError(f"{path}: not a {WEIGHTS_FORMAT} file")
    if saved["relative_to"] == "init" and reference is None:
        raise ValueError(f"{path}: saved relative to init run {saved['meta'].get('init_run')}; pass its state")
    cfg = dict(saved["model_config"])
    model = RetrievalModel(cfg.pop("vocab_size"), str(paths.mobilenet_tflite()), **cfg)
    own = model.state_dict()
    unknown = [k for k in saved["tensors"] if k not in own]
    if unknown:
        raise ValueError(f"{path}: tensors the model does not have: {unknown[:5]}")
    base = {k: v for k, v in (reference or {}).items() if k in own}
    model.load_state_dict({**own, **base, **{k: v.to(own[k].dtype) for k, v in saved["tensors"].items()}})
    return model, saved["meta"]


def write_run(model, meta: Dict, run_dir: Path) -> None:
    """A finished stage-1 run folder (what finetune --init, ensemble and export read)."""
    from ..rslens.utils import save_checkpoint
    save_checkpoint(run_dir / "stage1" / "last.pt", {
        "model": model.state_dict(), "model_config": model.config, "adapters": False, "stage": 1,
        "finished": True, "history": meta.get("history", []), "command": meta.get("command"),
        "hp": meta.get("hp"), "unpacked_from": meta.get("source"),
    })


# --- here: pack the inputs -------------------------------------------------------------------------

def inputs_to_send(inits: List[Path]) -> List[tuple]:
    """(source file, path under the received folder) for everything `train` reads."""
    rsicd = paths.rsicd_dir()
    files = [(rsicd / n, f"shared/data/rsicd/{n}") for n in ("train.jsonl", "val.jsonl", "labels.json")]
    files += [(paths.mobilenet_tflite(), "shared/weights/" + paths.mobilenet_tflite().name)]
    clip = paths.clip_tokenizer_json().parent
    files += [(clip / n, f"shared/tokenizers/clip/{n}") for n in ("tokenizer.json", "tokenizer_config.json")]
    files += [(PACK_DIR / "inits" / f"{r.name}.pt", f"inits/{r.name}.pt") for r in inits]
    with open(rsicd / "train.jsonl", encoding="utf-8") as f:  # in split order: part 1 holds the first images,
        images = list(dict.fromkeys(json.loads(line)["image"] for line in f if line.strip()))  # enough for the check
    return files + [(rsicd / im, f"shared/data/rsicd/{im}") for im in images]


def pack(inits: List[Path], part_mb: float) -> int:
    from .train import build_model_from_checkpoint, stage_dir
    if PACK_DIR.exists():
        shutil.rmtree(PACK_DIR)
    for run in inits:  # the init runs' trained head and text tower (their backbone is the frozen TFLite one)
        model, ck = build_model_from_checkpoint(stage_dir(1, run) / "last.pt", torch.device("cpu"))
        if not ck.get("finished") or ck.get("adapters"):
            raise SystemExit(f"{run}: not a finished stage-1 run")
        save_trained_weights(model, PACK_DIR / "inits" / f"{run.name}.pt",
                             {"command": ck.get("command"), "history": ck.get("history", []), "source": run.name})
    files = inputs_to_send(inits)
    limit, parts, size = part_mb * 1e6, [[]], 0
    for src, rel in files:
        n = src.stat().st_size
        if size + n > limit and parts[-1]:
            parts.append([])
            size = 0
        parts[-1].append((src, rel))
        size += n
    for k, part in enumerate(parts, 1):
        root = PACK_DIR / f"part-{k}"
        for src, rel in part:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, root / rel)
        (root / f"part-{k}.json").write_text(json.dumps({"part": k, "parts": len(parts), "files": [r for _, r in part]}))
        print(f"part-{k}: {len(part)} files, {sum(s.stat().st_size for s, _ in part) / 1e6:.1f} MB")
    shutil.rmtree(PACK_DIR / "inits")
    tree = sum((paths.REPO_ROOT / f).stat().st_size for f in tracked_files() if (paths.REPO_ROOT / f).exists())
    print(f"working tree now {tree / 1e6:.1f} MB (tracked files present); a call carries at most 67.1 MB with its part"
          + ("" if tree < 10e6 else ": run `park` first"))
    return 0


def tracked_files(pattern: Optional[str] = None) -> List[str]:
    args = ["git", "ls-files", "-z"] + ([pattern] if pattern else [])
    out = subprocess.run(args, cwd=paths.REPO_ROOT, check=True, capture_output=True).stdout.decode()
    return [f for f in out.split("\0") if f]


def park() -> int:
    """Delete the tracked ONNX files from the working tree (git holds them; `restore` brings them back)."""
    status = subprocess.run(["git", "status", "--porcelain", "--", "*.onnx"], cwd=paths.REPO_ROOT, check=True,
                            capture_output=True, text=True).stdout.strip()
    if status:
        raise SystemExit(f"uncommitted changes to ONNX files; commit them first:\n{status}")
    gone = 0
    for f in tracked_files("*.onnx"):
        p = paths.REPO_ROOT / f
        if p.exists():
            gone += p.stat().st_size
            p.unlink()
    print(f"parked {gone / 1e6:.1f} MB of ONNX files; `restore` checks them out again")
    return 0


def restore() -> int:
    subprocess.run(["git", "checkout", "--", "*.onnx"], cwd=paths.REPO_ROOT, check=True)
    print("ONNX files restored from git")
    return 0


# --- on the device -----------------------------------------------------------------------------------

def receive(part: int, check: bool, out: Path, device: str) -> int:
    src = PACK_DIR / f"part-{part}"
    if not src.is_dir():
        raise SystemExit(f"{src} is not here: name .device/part-{part} in the call's carry")
    shutil.copytree(src, RECEIVED, dirs_exist_ok=True)
    n = sum(1 for p in RECEIVED.rglob("*") if p.is_file())
    print(f"received part {part}; {n} files in {RECEIVED}")
    return self_check(out, device) if check else 0


def use_received() -> Path:
    """Point the shared-data and runs locations at the received parts; -> the runs folder (init runs written)."""
    os.environ["RSLENS_SHARED"] = str(RECEIVED / "shared")
    runs = Path("/tmp/rslens-runs")
    os.environ["RSLENS_RUNS"] = str(runs)
    for w in sorted((RECEIVED / "inits").glob("*.pt")):  # finetune --init reads a run folder
        if not (runs / w.stem / "stage1" / "last.pt").exists():
            model, meta = load_trained_weights(w)
            write_run(model, meta, runs / w.stem)
    return runs


def finetune_command(device: str, finetune_args: List[str]) -> List[str]:
    return [sys.executable, "-m", "models.retrieval.finetune", "--device", device, "--augment", "batched",
            "--eval-every", "0", "--fresh"] + finetune_args


def self_check(out: Path, device: str, finetune_args: Optional[List[str]] = None) -> int:
    """Two training steps on the first 256 train images, the whole path (init run, data, model, export
    of the weights): a break with this machine's PyTorch shows in seconds, not after the training budget."""
    runs = use_received()
    init = sorted((RECEIVED / "inits").glob("*.pt"))[0].stem
    t0 = time.time()
    out.mkdir(parents=True, exist_ok=True)
    check = subprocess.run(finetune_command(device, finetune_args or ["--tune-cut", "1"])
                           + ["--init", str(runs / init), "--run-dir", str(runs / "check"), "--limit-train", "256",
                              "--limit-steps", "2", "--epochs", "1", "--weights-out", str(runs / "check.pt")],
                           cwd=paths.REPO_ROOT, capture_output=True, text=True)
    (out / "check.log").write_text(check.stdout + check.stderr)
    if check.returncode:
        print(check.stdout[-3000:] + check.stderr[-3000:])
        print("the 2-step check failed (check.log)")
        return 1
    (RECEIVED / "check-passed").write_text(f"{time.time() - t0:.0f} s\n")
    print(f"2-step check passed in {time.time() - t0:.0f} s (torch {torch.__version__}, {device})")
    return 0


def check_received() -> None:
    manifests = sorted(RECEIVED.glob("part-*.json")) if RECEIVED.is_dir() else []
    if not manifests:
        raise SystemExit(f"nothing received in {RECEIVED} (a fresh machine?): send every part first")
    total = json.loads(manifests[0].read_text())["parts"]
    have = {json.loads(m.read_text())["part"] for m in manifests}
    lost = sorted(set(range(1, total + 1)) - have)
    missing = [r for m in manifests for r in json.loads(m.read_text())["files"] if not (RECEIVED / r).exists()]
    if lost or missing:
        raise SystemExit(f"parts not received: {lost}; files missing: {missing[:5]} (the machine went cold between calls?)")


def train(budget_min: float, seeds: List[int], finetune_args: List[str], out: Path, device: str = "cuda") -> int:
    check_received()
    runs = use_received()
    if not (RECEIVED / "check-passed").exists() and self_check(out, device, finetune_args):
        return 1
    t0 = time.time()
    inits = sorted((RECEIVED / "inits").glob("*.pt"))
    base = finetune_command(device, finetune_args)
    procs = []
    threads = max(1, (os.cpu_count() or 1) // (len(inits) * len(seeds)))
    for w in inits:
        for s in seeds:
            name = f"member-{w.stem}-s{s}"
            log = open(out / f"{name}.log", "w")
            cmd = base + ["--init", str(runs / w.stem), "--run-dir", str(runs / name), "--seed", str(s),
                          "--time-budget-min", str(budget_min), "--epochs", "40", "--checkpoint-every", "10", "--weights-out", str(out / f"{name}.pt")]
            env = {**os.environ, "OMP_NUM_THREADS": str(threads)}  # the members share the machine's cores
            procs.append((name, subprocess.Popen(cmd, cwd=paths.REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)))
    failed = [name for name, p in procs if p.wait() != 0]
    with open(out / "members.log", "w") as merged:  # $OUT returns at most 8 files
        for name, _ in procs:
            merged.write(f"===== {name}\n" + (out / f"{name}.log").read_text())
            (out / f"{name}.log").unlink()
    print(f"{len(procs) - len(failed)} of {len(procs)} members finished in {(time.time() - t0) / 60:.1f} min"
          + (f"; failed: {failed}" if failed else ""))
    return 1 if failed else 0


# --- here: the results back into run folders ---------------------------------------------------------

def unpack(src: Path, prefix: str, inits: List[Path]) -> int:
    from ..rslens.utils import load_checkpoint
    from .train import stage_dir
    for w in sorted(src.glob("member-*.pt")):
        init_run = torch.load(w, map_location="cpu", weights_only=False)["meta"].get("init_run")
        match = [r for r in inits if r.name == init_run]
        if not match:
            raise SystemExit(f"{w.name} was trained from init run {init_run!r}: name it in --inits")
        model, meta = load_trained_weights(w, load_checkpoint(stage_dir(1, match[0]) / "last.pt")["model"])
        meta["source"] = w.name
        run = paths.runs_dir() / f"{prefix}{w.stem[len('member-'):]}"
        write_run(model, meta, run)
        hist = [h for h in meta.get("history", []) if "loss" in h]
        print(f"{w.name} -> {paths.rel(run)}" + (f" ({len(hist)} epochs, final loss {hist[-1]['loss']:.4f})" if hist else ""))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack")
    p.add_argument("--inits", default="models/runs/v020-s0,models/runs/v020-s1")
    p.add_argument("--part-mb", type=float, default=56.0, help="a call carries the tree (~3.4 MB once parked) and one part: 64 MiB at most")
    sub.add_parser("park")
    sub.add_parser("restore")
    p = sub.add_parser("receive")
    p.add_argument("--part", type=int, required=True)
    p.add_argument("--check", action="store_true", help="then run the 2-step check (part 1 holds enough images)")
    p.add_argument("--out", default=os.environ.get("OUT", "/tmp/rslens-out"))
    p.add_argument("--device", default="cuda")
    p = sub.add_parser("train")
    p.add_argument("--budget-min", type=float, default=5.0, help="training minutes per member (all run at once)")
    p.add_argument("--seeds", default="20,21", help="member seeds per init run")
    p.add_argument("--finetune-args", default="--tune-cut 1",
                   help="further finetune flags, e.g. '--tune-cut 1 --batch 128 --min-scale 0.4'")
    p.add_argument("--out", default=os.environ.get("OUT", "/tmp/rslens-out"))
    p.add_argument("--device", default="cuda", help="cpu only for a rehearsal of the whole job here")
    p = sub.add_parser("unpack")
    p.add_argument("--from", dest="src", required=True, help="folder with the member-*.pt files")
    p.add_argument("--prefix", default="gpu-")
    p.add_argument("--inits", default="models/runs/v020-s0,models/runs/v020-s1", help="the init runs packed")
    a = ap.parse_args(argv)
    if a.cmd == "pack":
        return pack([paths.REPO_ROOT / r for r in a.inits.split(",")], a.part_mb)
    if a.cmd == "park":
        return park()
    if a.cmd == "restore":
        return restore()
    if a.cmd == "receive":
        return receive(a.part, a.check, Path(a.out), a.device)
    if a.cmd == "train":
        return train(a.budget_min, [int(s) for s in a.seeds.split(",")], a.finetune_args.split(), Path(a.out), a.device)
    return unpack(Path(a.src), a.prefix, [paths.REPO_ROOT / r for r in a.inits.split(",")])


if __name__ == "__main__":
    sys.exit(main())
