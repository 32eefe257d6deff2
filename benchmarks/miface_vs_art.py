"""MI-Face: mirisk against IBM ART's ``MIFace`` on the same trained face recogniser.

Run: ``make bench-art`` or ``python benchmarks/miface_vs_art.py [--arch softmax|mlp]
[--iterations 1000]``. Needs ``pip install -e '.[bench]'`` (ART is not a dependency of mirisk).

In one process, side by side: (1) the bare model work, ``iterations`` forward+backward
passes of the 40-image batch; (2) mirisk's MI-Face with the same step size and iteration
cap as ART, stopping rules on (its normal use) and off (exactly ``iterations`` full steps,
for the efficiency ratio); (3) ART's MIFace as its users run it: its defaults except
``max_iter`` and ``batch_size``, on a ``PyTorchClassifier`` whose output is the softmax, so
its class gradient is the gradient of the class probability the paper descends. Denormal
floats are flushed for every run (mirisk sets it; it is process-wide, so ART gets it too).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from art.attacks.inference.model_inversion import MIFace as ArtMIFace
from art.estimators.classification import PyTorchClassifier

from mirisk.access import WhiteBoxAccess
from mirisk.attacks import MIFace
from mirisk.data import load_faces
from mirisk.pipelines.faces import face_gallery, face_identification, train_face_target
from mirisk.runtime import prepare_torch, versions


def bare_forward_backward(access: WhiteBoxAccess, labels: torch.Tensor, steps: int) -> float:
    x = torch.full((len(labels), *access.input_shape), 0.0)
    rows = torch.arange(len(labels))
    started = time.perf_counter()
    for _ in range(steps):
        x.requires_grad_(True)
        cost = 1.0 - access.probabilities(x)[rows, labels]
        torch.autograd.grad(cost.sum(), x)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", default="softmax", choices=["softmax", "mlp"])
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--out", help="Also write the JSON report here.")
    args = parser.parse_args()
    prepare_torch(0)

    faces = load_faces(None)
    target = train_face_target(args.arch, faces)
    access = WhiteBoxAccess(target)
    labels = torch.arange(faces.n_classes)
    gallery = face_gallery(target, faces)

    def identify(reconstructions: np.ndarray) -> dict[str, float]:
        """The independent judge (with its interval and face rate), held-out re-ID, the pixel evaluator."""
        measured = face_identification(target, faces, reconstructions.astype(np.float32), labels.numpy(),
                                       gallery=gallery)
        return {**measured.headline(), "identification_top5": measured.pixel_top5,
                "ssim_mean": measured.ssim_mean}

    # Bare work and the fixed-step attack alternate, three times each, on a shared machine:
    # the efficiency is the median of the three side-by-side ratios.
    fixed_attack = MIFace(iterations=args.iterations, learning_rate=0.1, cost_threshold=0.0,
                          patience=args.iterations + 1)
    pairs = []
    for _ in range(3):
        bare = bare_forward_backward(access, labels, args.iterations)
        fixed = fixed_attack.run(access, labels)
        pairs.append((bare / fixed.seconds, bare, fixed))
    efficiency, bare, fixed = sorted(pairs, key=lambda pair: pair[0])[1]
    normal = MIFace(iterations=args.iterations, learning_rate=0.1).run(access, labels)

    art_model = PyTorchClassifier(
        model=torch.nn.Sequential(access.network, torch.nn.Softmax(dim=1)),
        loss=torch.nn.CrossEntropyLoss(), input_shape=target.input_shape, nb_classes=faces.n_classes,
        clip_values=(0.0, 1.0),
    )
    art_attack = ArtMIFace(art_model, max_iter=args.iterations, batch_size=len(labels), verbose=False)
    started = time.perf_counter()
    art_reconstructions = art_attack.infer(None, labels.numpy())
    art_seconds = time.perf_counter() - started

    report = {
        "setting": f"{args.arch} target, {len(labels)} identities x {args.iterations} iterations, batch {len(labels)}, "
                   f"lambda 0.1, denormals flushed for all runs, torch threads {torch.get_num_threads()}",
        "target_test_accuracy": target.metrics["test_accuracy"],
        "bare_forward_backward_seconds": bare,
        "mirisk": {"seconds": normal.seconds, "iterations_mean": float(normal.iterations.float().mean()),
                   **identify(normal.reconstructions.numpy())},
        "mirisk_fixed_steps": {"seconds": fixed.seconds, "efficiency": efficiency,
                               "efficiency_runs": [pair[0] for pair in pairs],
                               **identify(fixed.reconstructions.numpy())},
        "art": {"seconds": art_seconds, **identify(art_reconstructions)},
        "speedup_vs_art": art_seconds / normal.seconds,
        "speedup_vs_art_fixed_steps": art_seconds / fixed.seconds,
        "versions": {**versions(), "adversarial-robustness-toolbox": __import__("art").__version__},
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
