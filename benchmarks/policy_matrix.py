"""Output policies judged by attacks: the policy x attack matrix on a face target, every cell
judged by the independent face judge beside the same attack, through the same policy, on the
target's label-permuted twin, over seeds.

Run: ``python benchmarks/policy_matrix.py [--arch softmax] [--seeds 0 1 2] [--every N]
[--iterations N] [--out FILE]``. Each seed retrains the target (split and weights) and its
twin. Seeds can run side by side as separate processes (one ``--seeds S --out F`` each) and be
summarised with ``--runs-from F1 F2 F3``. Rates are pooled over seeds (people x seeds trials)
with a 95% Wilson interval; the per-seed values are kept in the JSON.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from mirisk.attacks.basis import dct_basis
from mirisk.attacks.blackbox import ScoreBlackBox
from mirisk.attacks.labelonly import BoundaryRepulsion
from mirisk.data import load_faces
from mirisk.models.training import TrainingConfig
from mirisk.pipelines.faces import default_training, train_face_target
from mirisk.pipelines.matrix import PolicyMatrix
from mirisk.runtime import prepare_torch
from seeded_runs import judged_line, pooled_rate, seeded_runs, write_results

ATTACKS = ("white-box", "blackbox-scores", "labelonly")
RATES = ("judge_top1", "baseline_judge_top1", "reid_top1", "baseline_reid_top1", "face_rate", "identification_top1")


def seed_matrix(architecture: str, seed: int, args: argparse.Namespace, faces) -> dict:
    """The whole matrix for one seed's target and twin."""
    config = TrainingConfig(**{**default_training(architecture).as_dict(), "seed": seed})
    target = train_face_target(architecture, faces, split_seed=seed, config=config)
    steps = {} if args.iterations is None else {"iterations": args.iterations}
    return PolicyMatrix(basis=dct_basis(target.input_shape), blackbox=ScoreBlackBox(**steps),
                        labelonly=BoundaryRepulsion(**steps)).run(
        target, faces, people=torch.arange(0, faces.n_classes, args.every), seed=seed, baseline=True,
        on_cell=lambda spec: print("seed", seed, "done", spec, flush=True))


def summarise(matrices: list[dict]) -> list[dict]:
    """One row per policy and attack, pooled over the seeds' matrices."""
    n = matrices[0]["n_targets"]
    summary = []
    for index, row in enumerate(matrices[0]["rows"]):
        rows = [matrix["rows"][index] for matrix in matrices]
        for attack in ATTACKS:
            cells = [one[attack] for one in rows]
            summary.append({"policy": row["policy"], "attack": attack, "seeds": len(cells),
                            **{key: pooled_rate([cell[key] for cell in cells], [n] * len(cells))
                               for key in RATES},
                            "accuracy_mean": float(np.mean([one["cost"]["accuracy"] for one in rows])),
                            "calibration_error_mean": None if row["cost"]["calibration_error"] is None else float(
                                np.mean([one["cost"]["calibration_error"] for one in rows])),
                            "queries_per_target": cells[0]["queries_per_target"]})
    return summary


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", default="softmax")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--every", type=int, default=1, help="Attack every n-th person (2: 20 of 40).")
    parser.add_argument("--iterations", type=int, help="Steps of both black-box attacks (default: theirs, 300 and 200).")
    parser.add_argument("--out", default="benchmarks/results/policy_matrix_judged.json")
    parser.add_argument("--runs-from", nargs="+", type=Path, default=None,
                        help="Summarise the matrices of these earlier outputs (e.g. one per seed, run side by side).")
    args = parser.parse_args()
    prepare_torch()
    torch.set_num_threads(1)  # one core each, so that seeds can run side by side
    faces = load_faces(None)
    matrices = seeded_runs(args, "matrices", lambda seed: seed_matrix(args.arch, seed, args, faces))
    summary = summarise(matrices)
    write_results(args, "matrices", matrices, summary)
    for row in summary:
        print(f"{row['policy']:24s} {row['attack']:16s} {judged_line(row)}")


if __name__ == "__main__":
    main()
