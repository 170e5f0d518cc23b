"""Markdown comparison tables from models/detection/metrics.json (used for MODEL_CARD.md).
/usr/bin/python3 -m models.detection.report"""
from __future__ import annotations

import json

from models.rslens import paths

MODELS = [("zeroshot", "YOLOX-Nano COCO zero-shot (mapped)"), ("baseline", "ours, baseline (no RS-TinyNet modules)"),
          ("tinynet", "ours, tinynet (MDCA + PFDH/stride 4 + ARB)"),
          ("tinynet-noP2", "tinynet, stride-4 outputs ignored at inference (ablation)")]


def f(v):
    return "–" if v is None or v < 0 else f"{v:.3f}"


def main() -> int:
    m = json.loads((paths.MODELS_DIR / "detection" / "metrics.json").read_text())
    for suffix, title in (("@val", "validation, native resolution"), ("@val@x0.5", "validation, images resampled ×0.5"),
                          ("@test", "harlem-* (evaluation-only, never trained on), native resolution")):
        rows = [(k, name, m.get(k + suffix)) for k, name in MODELS if (k + suffix) in m]
        if not rows:
            continue
        first = rows[0][2]
        print(f"\n**{title}** (GT: " + ", ".join(f"{c} {v['all']['n_gt']}" for c, v in first["per_class"].items())
              + "; by size: " + ", ".join(f"{b} {first['overall'][b]['n_gt']}" for b in ("very_tiny", "tiny", "small", "medium")) + ")\n")
        print("| model | AP | AP50 | AP75 | AP_vt | AP_t | AP_s | AP_m | car AP / AP50 | large_vehicle AP / AP50 | ship AP / AP50 |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for k, name, r in rows:
            o = r["overall"]
            pc = r["per_class"]
            cells = [f(o["all"]["AP"]), f(o["all"]["AP50"]), f(o["all"]["AP75"])] + [f(o[b]["AP"]) for b in ("very_tiny", "tiny", "small", "medium")]
            cells += [f"{f(pc[c]['all']['AP'])} / {f(pc[c]['all']['AP50'])}" for c in ("car", "large_vehicle", "ship")]
            print(f"| {name} | " + " | ".join(cells) + " |")
        print("\nper class × size bin (AP, IoU .50:.95):\n")
        print("| model | class | all | very_tiny | tiny | small | medium |")
        print("|---|---|---|---|---|---|---|")
        for k, name, r in rows:
            for c, v in r["per_class"].items():
                if v["all"]["n_gt"] == 0:
                    continue
                print(f"| {k} | {c} | " + " | ".join(f(v[b]["AP"]) for b in ("all", "very_tiny", "tiny", "small", "medium")) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
