"""MI-Face settings on the three face targets: the paper's step size against mirisk's default,
the starting image, and a total-variation prior.

Run: ``python benchmarks/miface_settings.py [--out FILE]`` (about 5 minutes on 2 cores).
Each row: identification (independent evaluator) top-1, re-identification top-1, SSIM to the
closest training photo, mean steps used and wall time, for all 40 people as one batch.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mirisk.attacks import MIFace, TotalVariationPrior
from mirisk.data import load_faces
from mirisk.pipelines.faces import invert_faces, train_face_target
from mirisk.runtime import versions

SETTINGS = {
    "paper: lambda 0.1, 1000 steps": MIFace(iterations=1000, learning_rate=0.1),
    "mirisk default: lambda 1.0, 1000 steps": MIFace(iterations=1000, learning_rate=1.0),
    "lambda 1.0 + TV prior 0.3": MIFace(iterations=1000, learning_rate=1.0, prior=TotalVariationPrior(0.3)),
    "lambda 1.0, start at mid-grey": MIFace(iterations=1000, learning_rate=1.0, start=0.5),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", help="Also write the JSON rows here.")
    args = parser.parse_args()
    faces = load_faces(None)
    rows = []
    for architecture in ("softmax", "mlp", "cnn"):
        target = train_face_target(architecture, faces)
        for name, attack in SETTINGS.items():
            report = invert_faces(target, faces, attack)
            metrics = report.metrics
            row = {
                "model": architecture,
                "setting": name,
                "identification_top1": metrics["identification_top1"],
                "reid_top1": metrics["reid_top1"],
                "ssim_mean": metrics["ssim_mean"],
                "steps_mean": report.payload["iterations_used"]["mean"],
                "seconds": report.payload["seconds"],
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps({"rows": rows, "versions": versions()}, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
