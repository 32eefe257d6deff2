"""Attacks in the latent space of the shipped face prior against the older pixel- and
basis-space attacks, on models of the private people (s01-s20), judged by the independent
recogniser beside each attack's label-permuted baseline, over seeds.

Run: ``python benchmarks/generative_attacks.py [--arch cnn] [--seeds 0 1 2] [--runs-from A.json B.json]
[--attacks gmi if-gmi latent-scores latent-label miface dct-scores dct-label] [--gmi-iterations N]
[--scores-iterations N] [--label-iterations N]``. Each seed retrains the target (split and
weights) and its twin; rates are pooled over seeds with a 95% Wilson interval (per-seed
values in the JSON). The score attacks spend 40 queries per person per step (50 steps:
2,000 per person, the issue's budget).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from honest_evaluation import one_run, pooled, summary_line
from mirisk.access.oracle import Oracle
from mirisk.access.policies import parse_policy
from mirisk.access.whitebox import WhiteBoxAccess
from mirisk.attacks.basis import LatentBasis, dct_basis
from mirisk.attacks.blackbox import ScoreBlackBox
from mirisk.attacks.contract import seeded
from mirisk.attacks.generative import GenerativeInversion
from mirisk.attacks.labelonly import BoundaryRepulsion
from mirisk.data.faces import BUNDLED_PRIVATE, load_faces
from mirisk.models.target import TargetModel
from mirisk.models.training import TrainingConfig
from mirisk.pipelines.faces import configured_miface, default_training, train_face_target
from mirisk.priors.store import check_prior_fits, load_prior
from mirisk.runtime import prepare_torch, versions

ATTACKS = ("gmi", "if-gmi", "latent-scores", "latent-label", "miface", "dct-scores", "dct-label")


def attack_runner(name: str, people: torch.Tensor, args: argparse.Namespace, seed: int, prior):
    """A function that runs attack ``name`` on a model, the same for the target and its twin."""
    if name in ("gmi", "if-gmi"):
        features = args.feature_steps if name == "if-gmi" else 0
        gmi = GenerativeInversion(iterations=args.gmi_iterations - features, feature_steps=features,
                                  feature_radius=args.feature_radius, prior=prior)
        return lambda model: gmi.run(WhiteBoxAccess(model), people, generator=seeded(seed))
    if name == "miface":
        miface = configured_miface(iterations=args.miface_iterations)
        return lambda model: miface.run(WhiteBoxAccess(model), people)
    latent = name.startswith("latent")
    if name.endswith("scores"):
        attack, policy = ScoreBlackBox(iterations=args.scores_iterations), "scores"
    else:
        attack = BoundaryRepulsion(iterations=args.label_iterations, init_scale=1.0 if latent else 3.0)
        policy = "label"

    def run(model: TargetModel):
        basis = LatentBasis(prior) if latent else dct_basis(model.input_shape)
        return replace(attack, basis=basis).run(Oracle(model, parse_policy(policy)), people, generator=seeded(seed))

    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", nargs="+", default=["cnn"])
    parser.add_argument("--attacks", nargs="+", default=list(ATTACKS), choices=ATTACKS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--gmi-iterations", type=int, default=100)
    parser.add_argument("--feature-steps", type=int, default=50,
                        help="if-gmi: of the --gmi-iterations steps, these many in the first feature map")
    parser.add_argument("--feature-radius", type=float, default=0.5)
    parser.add_argument("--miface-iterations", type=int, default=1000)
    parser.add_argument("--scores-iterations", type=int, default=50)
    parser.add_argument("--label-iterations", type=int, default=100)
    parser.add_argument("--out", default="benchmarks/results/generative_attacks.json")
    parser.add_argument("--runs-from", nargs="+", type=Path, default=None,
                        help="Summarise the runs of these earlier outputs (e.g. one per seed, run side by side).")
    args = parser.parse_args()
    prepare_torch()
    torch.set_num_threads(1)  # batch work on one core each, so that seeds can run side by side
    faces, prior = load_faces(BUNDLED_PRIVATE), load_prior()
    rows = [row for path in args.runs_from or () for row in json.loads(path.read_text())["runs"]]
    for architecture in args.arch if not rows else ():
        for seed in args.seeds:
            config = TrainingConfig(**{**default_training(architecture).as_dict(), "seed": seed})
            target = train_face_target(architecture, faces, split_seed=seed, config=config)
            check_prior_fits(prior, target)
            people = torch.arange(target.n_classes)
            for attack in args.attacks:
                rows.append(one_run(architecture, attack, seed, attack_runner(attack, people, args, seed, prior),
                                    people, faces, target))
                print(json.dumps({k: v for k, v in rows[-1].items() if k != "disagreement"}), flush=True)
                Path(args.out).parent.mkdir(parents=True, exist_ok=True)
                Path(args.out).write_text(json.dumps({"runs": rows}, indent=2) + "\n")
    args.seeds = sorted({row["seed"] for row in rows})
    summary = []
    for architecture in args.arch:
        for attack in args.attacks:
            group = [row for row in rows if row["arch"] == architecture and row["attack"] == attack]
            if not group:
                continue
            summary.append({"arch": architecture, "attack": attack, "seeds": len(group),
                            **{key: pooled(group, key) for key in (
                                "judge_top1", "baseline_judge_top1", "face_rate", "reid_top1", "baseline_reid_top1",
                                "pixel_top1")},
                            "test_accuracy_mean": float(np.mean([row["test_accuracy"] for row in group])),
                            "seconds_mean": float(np.mean([row["seconds"] for row in group]))})
    settings = vars(args) | {"runs_from": [str(path) for path in args.runs_from or ()]}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"settings": settings, "summary": summary, "runs": rows,
                                          "versions": versions()}, indent=2) + "\n")
    for row in summary:
        print(summary_line(row))


if __name__ == "__main__":
    main()
