"""Output policies judged by attacks: the policy x attack matrix on the softmax and MLP face
targets, and the queries the score attack needs to reach 90% of white-box identification.

Run: ``python benchmarks/policy_matrix.py [--arch softmax mlp] [--every N] [--iterations N]
[--no-curve]``. Defaults: all 40 people, no query budget, the attacks' own step counts: 300 NES
steps for the score attack (40 queries per person per step) and 200 repulsion steps for
the label-only one; softmax takes about 6 minutes on 2 cores. The MLP's recorded run used ``--arch mlp --every 2 --iterations 50 --no-curve``
(20 people), since each MLP query costs about 60x a softmax query.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from mirisk.access.oracle import Oracle
from mirisk.access.policies import parse_policy
from mirisk.attacks.basis import dct_basis
from mirisk.attacks.blackbox import ScoreBlackBox
from mirisk.attacks.labelonly import BoundaryRepulsion
from mirisk.data import load_faces
from mirisk.pipelines.faces import measure_face_reconstructions, train_face_target
from mirisk.pipelines.matrix import PolicyMatrix
from mirisk.runtime import versions

CURVE_ITERATIONS = (25, 50, 100, 200, 400)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", nargs="+", default=["softmax", "mlp"])
    parser.add_argument("--out-dir", default="benchmarks/results")
    parser.add_argument("--every", type=int, default=1, help="Attack every n-th person (2: 20 of 40).")
    parser.add_argument("--iterations", type=int, help="Steps of both black-box attacks (default: theirs, 300 and 200).")
    parser.add_argument("--no-curve", action="store_true", help="Skip the queries-vs-identification curve.")
    args = parser.parse_args()
    out_dir = Path(args.out_dir)
    faces = load_faces(None)
    for architecture in args.arch:
        target = train_face_target(architecture, faces)
        basis = dct_basis(target.input_shape)
        people = torch.arange(0, faces.n_classes, args.every)
        steps = {} if args.iterations is None else {"iterations": args.iterations}
        matrix = PolicyMatrix(
            basis=basis, blackbox=ScoreBlackBox(**steps), labelonly=BoundaryRepulsion(**steps),
        ).run(target, faces, people=people, on_cell=lambda spec: print("done", spec, flush=True))
        white_box = matrix["rows"][0]["white-box"]["identification_top1"]
        curve = []
        for iterations in () if args.no_curve else CURVE_ITERATIONS:
            result = ScoreBlackBox(iterations=iterations).run(Oracle(target, parse_policy("scores")),
                                                             torch.arange(40), basis)
            metrics = measure_face_reconstructions(target, faces, result).metrics
            curve.append({"queries_per_target": result.queries_used / 40,
                          "identification_top1": metrics["identification_top1"], "reid_top1": metrics["reid_top1"]})
            print(json.dumps(curve[-1]), flush=True)
        reached = [point["queries_per_target"] for point in curve
                   if point["identification_top1"] >= 0.9 * white_box]
        report = {"matrix": matrix, "score_attack_curve": curve, "white_box_top1": white_box,
                  "queries_to_90pct_of_white_box": reached[0] if reached else None, "versions": versions()}
        suffix = "" if args.every == 1 and args.iterations is None else f"_every{args.every}_it{args.iterations}"
        path = out_dir / f"policy_matrix_{architecture}{suffix}.json"
        path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print("wrote", path, flush=True)


if __name__ == "__main__":
    main()
