"""The face attacks judged honestly: the independent judge (dlib's face recogniser against
held-out photos) beside the pixel evaluator, with the label-permuted baseline, face rate and
disagreement, over seeds.

Run: ``python benchmarks/honest_evaluation.py [--arch softmax mlp cnn] [--seeds 0 1 2]
[--attacks miface scores topk label] [--miface-iterations N] [--blackbox-iterations N]
[--every N]``. Each seed retrains the target (split and weights) and its label-permuted twin,
and reruns every attack on both. Rates are pooled over seeds (people x seeds trials) with a
95% Wilson interval; the per-seed values are kept in the JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from mirisk.access.oracle import Oracle
from mirisk.access.policies import parse_policy
from mirisk.access.whitebox import WhiteBoxAccess
from mirisk.attacks.blackbox import ScoreBlackBox
from mirisk.attacks.contract import seeded
from mirisk.attacks.labelonly import BoundaryRepulsion
from mirisk.data import load_faces
from mirisk.models.target import TargetModel
from mirisk.models.training import TrainingConfig
from mirisk.pipelines.face_baseline import run_baseline
from mirisk.pipelines.faces import configured_miface, default_training, measure_face_reconstructions, train_face_target
from mirisk.runtime import prepare_torch, versions
from seeded_runs import judged_line, pooled_rate

POLICIES = {"scores": "scores", "topk": "topk:3", "label": "label"}


def attack_runner(name: str, people: torch.Tensor, args: argparse.Namespace, seed: int):
    """A function that runs attack ``name`` on a model, the same for the target and its twin."""
    if name == "miface":
        miface = configured_miface(iterations=args.miface_iterations)
        return lambda model: miface.run(WhiteBoxAccess(model), people)
    attack = (BoundaryRepulsion(iterations=args.blackbox_iterations) if name == "label"
              else ScoreBlackBox(iterations=args.blackbox_iterations))

    def run(model: TargetModel):
        return attack.run(Oracle(model, parse_policy(POLICIES[name])), people, generator=seeded(seed))

    return run


def one_run(architecture: str, attack: str, seed: int, runner, people: torch.Tensor, faces, target) -> dict:
    """``runner`` on the target and on its label-permuted twin, both judged."""
    started = time.perf_counter()
    result = runner(target)
    twin = run_baseline(target, faces, runner, seed)
    metrics = measure_face_reconstructions(target, faces, result, seed=seed, baseline=twin).metrics
    judge, base = metrics["independent"], metrics["baseline"]
    return {"arch": architecture, "attack": attack, "seed": seed, "n": int(len(people)),
            "judge_top1": judge["identification_top1"], "face_rate": judge["face_rate"],
            "pixel_top1": metrics["identification_top1"], "reid_top1": metrics["reid_top1"],
            "disagreement": metrics["evaluator_disagreement"],
            "baseline_judge_top1": base["independent"]["identification_top1"],
            "baseline_reid_top1": base["reid_top1"], "baseline_pixel_top1": base["identification_top1"],
            "test_accuracy": target.metrics["test_accuracy"], "seconds": time.perf_counter() - started}


def pooled(rows: list[dict], key: str) -> dict:
    return pooled_rate([row[key] for row in rows], [row["n"] for row in rows])


def summary_line(row: dict) -> str:
    """One pooled row: the judge beside its baseline, face rate, re-identification, pixel evaluator."""
    return f"{row['arch']:8s} {row['attack']:13s} {judged_line(row, 'pixel_top1')}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", nargs="+", default=["softmax", "mlp", "cnn"])
    parser.add_argument("--attacks", nargs="+", default=["miface", "scores", "topk", "label"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--miface-iterations", type=int, default=1000)
    parser.add_argument("--blackbox-iterations", type=int, default=100)
    parser.add_argument("--every", type=int, default=1, help="Attack every n-th person (2: 20 of 40).")
    parser.add_argument("--out", default="benchmarks/results/honest_evaluation.json")
    args = parser.parse_args()
    prepare_torch()
    faces = load_faces(None)
    rows = []
    for architecture in args.arch:
        for seed in args.seeds:
            config = TrainingConfig(**{**default_training(architecture).as_dict(), "seed": seed})
            target = train_face_target(architecture, faces, split_seed=seed, config=config)
            people = torch.arange(0, target.n_classes, args.every)
            for attack in args.attacks:
                rows.append(one_run(architecture, attack, seed, attack_runner(attack, people, args, seed), people,
                                    faces, target))
                print(json.dumps({k: v for k, v in rows[-1].items() if k != "disagreement"}), flush=True)
    summary = []
    for architecture in args.arch:
        for attack in args.attacks:
            group = [row for row in rows if row["arch"] == architecture and row["attack"] == attack]
            pixel_named = sum(row["disagreement"]["pixel_identified"] for row in group)
            rejected = sum(row["disagreement"]["judge_rejected"] for row in group)
            summary.append({"arch": architecture, "attack": attack, "seeds": len(group),
                            **{key: pooled(group, key) for key in (
                                "judge_top1", "baseline_judge_top1", "face_rate", "reid_top1", "baseline_reid_top1",
                                "pixel_top1", "baseline_pixel_top1")},
                            "disagreement": {"rate": rejected / pixel_named if pixel_named else 0.0,
                                             "pixel_identified": pixel_named, "judge_rejected": rejected},
                            "test_accuracy_mean": float(np.mean([row["test_accuracy"] for row in group]))})
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"settings": vars(args), "summary": summary, "runs": rows,
                                          "versions": versions()}, indent=2) + "\n")
    for row in summary:
        print(f"{summary_line(row)} disagree {row['disagreement']['rate']:.0%}")


if __name__ == "__main__":
    main()
