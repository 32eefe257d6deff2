"""Channels-last convolutions against PyTorch's default layout, side by side in one process.

For each seed a CNN is trained on the private 20 (``bundled:att_faces_private``), and each
face attack runs on it twice in a row, once with the model's and the prior's convolution
weights in the default (contiguous) layout and once channels-last, as
:meth:`TargetModel.frozen_network` and ``load_prior`` now store them; the order of the two
alternates from seed to seed. Recorded per attack and seed: both wall times, their ratio,
and the largest difference between the two sides' reconstructions.

Run: ``python benchmarks/convolution_layout.py [--seeds 0 1 2] [--out FILE]`` (about 10
minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path
from unittest.mock import patch

import torch

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
from mirisk.priors.store import FacePrior, load_prior
from mirisk.runtime import convolution_layout, prepare_torch, versions

ATTACKS = ("gmi", "latent-scores", "latent-label", "miface", "dct-scores")


def run_attack(name: str, target: TargetModel, prior: FacePrior, channels_last: bool, seed: int) -> torch.Tensor:
    """The reconstructions of attack ``name``, with every convolution channels-last or, as
    before the change, in the default layout (the model's frozen copy left unconverted)."""
    people = torch.arange(target.n_classes)
    for module in (prior.generator, prior.discriminator):
        module.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    layout = convolution_layout if channels_last else lambda module, example: module
    with patch("mirisk.models.target.convolution_layout", layout):
        if name in ("gmi", "miface"):
            attack = (GenerativeInversion(iterations=20, prior=prior) if name == "gmi"
                      else configured_miface(iterations=200))
            return attack.run(WhiteBoxAccess(target), people, generator=seeded(seed)).reconstructions
        oracle = Oracle(target, parse_policy("scores" if name.endswith("scores") else "label"))
    basis = dct_basis(target.input_shape) if name.startswith("dct") else LatentBasis(prior)
    attack = ScoreBlackBox(iterations=10) if name.endswith("scores") else BoundaryRepulsion(iterations=20,
                                                                                           init_scale=1.0)
    return replace(attack, basis=basis).run(oracle, people, generator=seeded(seed)).reconstructions


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", default="benchmarks/results/convolution_layout.json")
    args = parser.parse_args()
    prepare_torch()
    faces, prior = load_faces(BUNDLED_PRIVATE), load_prior()
    layouts = {"contiguous": False, "channels-last": True}
    rows = []
    for index, seed in enumerate(args.seeds):
        config = TrainingConfig(**{**default_training("cnn").as_dict(), "seed": seed})
        target = train_face_target("cnn", faces, split_seed=seed, config=config)
        order = list(layouts) if index % 2 == 0 else list(reversed(layouts))
        for name in ATTACKS:
            seconds, images = {}, {}
            for side in order:
                started = time.perf_counter()
                images[side] = run_attack(name, target, prior, layouts[side], seed)
                seconds[side] = time.perf_counter() - started
            rows.append({"seed": seed, "attack": name, "first": order[0], "seconds": seconds,
                         "speed_up": seconds["contiguous"] / seconds["channels-last"],
                         "max_difference": float((images["contiguous"] - images["channels-last"]).abs().max())})
            print(json.dumps(rows[-1]), flush=True)
    summary = {name: {"median_speed_up": statistics.median(row["speed_up"] for row in rows if row["attack"] == name),
                      "speed_ups": [round(row["speed_up"], 3) for row in rows if row["attack"] == name],
                      "max_difference": max(row["max_difference"] for row in rows if row["attack"] == name)}
               for name in ATTACKS}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"settings": vars(args), "summary": summary, "runs": rows,
                                          "versions": versions()}, indent=2) + "\n")
    for name, row in summary.items():
        print(f"{name}: median {row['median_speed_up']:.2f}x {row['speed_ups']}, "
              f"largest difference {row['max_difference']:.2e}")


if __name__ == "__main__":
    main()
