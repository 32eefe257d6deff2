"""Training-time defences judged: the face sweep (DP-SGD at several epsilons, weight decay,
input dropout, early stopping, label smoothing) over seeds, every attack judged by the
independent face judge, beside the same attacks on the undefended model's label-permuted twin.

Run: ``python benchmarks/defence_sweep.py [--arch softmax] [--seeds 0 1 2] [--out FILE]``.
Each seed sets the split, the training and the attacks. Seeds can run side by side as
separate processes (one ``--seeds S --out F`` each) and be summarised with ``--runs-from F1
F2 F3``. Rates are pooled over seeds (people x seeds trials) with a 95% Wilson interval.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from mirisk.data import load_faces
from mirisk.data.faces import BUNDLED
from mirisk.pipelines.face_baseline import label_permuted_twin
from mirisk.pipelines.face_sweep import (
    SWEEP_ATTACKS, classic_sweep_attacks, epsilon_recipes, face_sweep, parse_recipes, sweep_reconstructions,
)
from mirisk.pipelines.faces import (
    default_training, measure_face_reconstructions, train_face_target,
)
from mirisk.runtime import prepare_torch
from seeded_runs import judged_line, pooled_rate, seeded_runs, write_results

EPSILONS = (None, 50.0, 8.0, 1.0)
DEFENCES = "weight-decay=0.01,dropout=0.5,early-stopping=5,label-smoothing=0.1,label-smoothing=-0.05"
RATES = ("judge_top1", "face_rate", "reid_top1", "identification_top1")
TWIN = "label-permuted twin (undefended recipe)"


def seed_run(args: argparse.Namespace, seed: int, faces) -> dict:
    """One seed: every sweep point, then the same two attacks on the undefended model's twin."""
    recipes = epsilon_recipes(EPSILONS) + parse_recipes(DEFENCES)
    attacks = classic_sweep_attacks(args.miface_iterations, args.blackbox_iterations)
    points = face_sweep(BUNDLED, args.arch, recipes, (args.n_train,), attacks, seed=seed, people=args.people,
                        on_point=lambda done: print("seed", seed, "point", done, flush=True))
    config = replace(default_training(args.arch), seed=seed)
    target = train_face_target(args.arch, faces, n_train=args.n_train, split_seed=seed, config=config)
    twin = label_permuted_twin(target, faces, seed)
    point = {"defence": TWIN, "epsilon": None, "n_train": args.n_train, "epsilon_spent": None,
             "train_accuracy": twin.metrics["train_accuracy"], "test_accuracy": twin.metrics["test_accuracy"]}
    for attack in attacks:  # the twin's reconstructions, judged against the target's split and gallery
        result = sweep_reconstructions(twin, attack, seed, args.people)
        point[attack.access] = measure_face_reconstructions(target, faces, result, seed=seed).identification.headline()
    return {"seed": seed, "n_targets": args.people or faces.n_classes, "points": [*points, point]}


def summarise(runs: list[dict]) -> list[dict]:
    """One row per defence and attack, pooled over the seeds."""
    rows = []
    for index, first in enumerate(runs[0]["points"]):
        points = [run["points"][index] for run in runs]
        trials = [run["n_targets"] for run in runs]
        for attack in SWEEP_ATTACKS:
            rows.append({"defence": first["defence"], "attack": attack, "seeds": [run["seed"] for run in runs],
                         **{key: pooled_rate([point[attack][key] for point in points], trials) for key in RATES},
                         "test_accuracy_mean": float(np.mean([point["test_accuracy"] for point in points])),
                         "test_accuracy_sd": float(np.std([point["test_accuracy"] for point in points], ddof=1))
                         if len(points) > 1 else None,
                         "epsilon_spent": [point["epsilon_spent"] for point in points]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", default="softmax")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--n-train", type=int, default=7)
    parser.add_argument("--people", type=int, default=None, help="Attack a seeded sample of people (default: all).")
    parser.add_argument("--miface-iterations", type=int, default=1000)
    parser.add_argument("--blackbox-iterations", type=int, default=100)
    parser.add_argument("--out", default="benchmarks/results/defence_sweep_judged.json")
    parser.add_argument("--runs-from", nargs="+", type=Path, default=None,
                        help="Summarise the runs of these earlier outputs (e.g. one per seed, run side by side).")
    args = parser.parse_args()
    prepare_torch()
    torch.set_num_threads(1)  # one core each, so that seeds can run side by side
    faces = load_faces(None)
    runs = seeded_runs(args, "runs", lambda seed: seed_run(args, seed, faces))
    summary = summarise(runs)
    write_results(args, "runs", runs, summary, epsilons=list(EPSILONS), defences=DEFENCES)
    for row in summary:
        print(f"{row['defence']:40s} {row['attack']:9s} acc {row['test_accuracy_mean']:.1%} {judged_line(row)}")


if __name__ == "__main__":
    main()
