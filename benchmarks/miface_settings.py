"""MI-Face settings on the three face targets: the paper's step size against mirisk's default,
the starting image, and a total-variation prior, judged by the independent face judge beside
the same setting on each target's label-permuted twin, over seeds.

Run: ``python benchmarks/miface_settings.py [--seeds 0 1 2] [--out FILE]``. Each seed retrains
the three targets (split and weights) and their twins. Each row: the judge's top-1 and face
rate, held-out re-identification, the pixel evaluator's top-1 (each pooled over people x seeds
with a 95% Wilson interval), the twin's judge and re-ID top-1, SSIM to the closest training
photo, mean steps used and wall time, for all 40 people as one batch.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from mirisk.access.whitebox import WhiteBoxAccess
from mirisk.attacks import MIFace, TotalVariationPrior
from mirisk.data import load_faces
from mirisk.pipelines.face_baseline import run_baseline
from mirisk.pipelines.faces import default_training, measure_face_reconstructions, train_face_target
from mirisk.runtime import prepare_torch, versions
from seeded_runs import judged_line, pooled_rate

SETTINGS = {
    "paper: lambda 0.1, 1000 steps": MIFace(iterations=1000, learning_rate=0.1),
    "mirisk default: lambda 1.0, 1000 steps": MIFace(iterations=1000, learning_rate=1.0),
    "lambda 1.0 + TV prior 0.3": MIFace(iterations=1000, learning_rate=1.0, prior=TotalVariationPrior(0.3)),
    "lambda 1.0, start at mid-grey": MIFace(iterations=1000, learning_rate=1.0, start=0.5),
}
RATES = ("judge_top1", "face_rate", "reid_top1", "pixel_top1", "baseline_judge_top1", "baseline_reid_top1")


def setting_run(architecture: str, name: str, attack: MIFace, target, faces, seed: int) -> dict:
    """One setting on the target and its twin, both judged."""
    people = torch.arange(target.n_classes)

    def runner(model):
        return attack.run(WhiteBoxAccess(model), people)

    report = measure_face_reconstructions(target, faces, runner(target), seed=seed,
                                          baseline=run_baseline(target, faces, runner, seed))
    metrics = report.metrics
    judge, base = metrics["independent"], metrics["baseline"]
    return {"model": architecture, "setting": name, "seed": seed, "n": int(len(people)),
            "judge_top1": judge["identification_top1"], "face_rate": judge["face_rate"],
            "reid_top1": metrics["reid_top1"], "pixel_top1": metrics["identification_top1"],
            "baseline_judge_top1": base["independent"]["identification_top1"], "baseline_reid_top1": base["reid_top1"],
            "ssim_mean": metrics["ssim_mean"], "steps_mean": report.payload["iterations_used"]["mean"],
            "seconds": report.payload["seconds"]}


def summarise(rows: list[dict]) -> list[dict]:
    """One row per model and setting, pooled over the seeds."""
    summary = []
    for key in dict.fromkeys((row["model"], row["setting"]) for row in rows):
        runs = [row for row in rows if (row["model"], row["setting"]) == key]
        summary.append({"model": key[0], "setting": key[1], "seeds": [run["seed"] for run in runs],
                        **{rate: pooled_rate([run[rate] for run in runs], [run["n"] for run in runs]) for rate in RATES},
                        **{mean: float(np.mean([run[mean] for run in runs])) for mean in ("ssim_mean", "steps_mean",
                                                                                          "seconds")}})
    return summary


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--models", nargs="+", default=["softmax", "mlp", "cnn"])
    parser.add_argument("--out", default="benchmarks/results/miface_settings_judged.json")
    args = parser.parse_args()
    prepare_torch()
    torch.set_num_threads(1)  # one core, so that other benchmarks can run beside it
    faces = load_faces(None)
    rows = []
    for seed in args.seeds:
        for architecture in args.models:
            config = replace(default_training(architecture), seed=seed)
            target = train_face_target(architecture, faces, split_seed=seed, config=config)
            for name, attack in SETTINGS.items():
                rows.append(setting_run(architecture, name, attack, target, faces, seed))
                print(json.dumps(rows[-1]), flush=True)
    summary = summarise(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"settings": vars(args), "summary": summary, "rows": rows,
                                          "versions": versions()}, indent=2) + "\n", encoding="utf-8")
    for row in summary:
        print(f"{row['model']:8s} {row['setting']:40s} {judged_line(row, 'pixel_top1')} SSIM {row['ssim_mean']:.3f} "
              f"steps {row['steps_mean']:.0f}")


if __name__ == "__main__":
    main()
