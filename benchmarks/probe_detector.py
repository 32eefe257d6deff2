"""The gateway's probe detector: how often it flags inversion searches (true positives)
and ordinary traffic (false positives), on the bundled AT&T faces.

Setting: a softmax face recogniser trained on 7 photos of each of the first 20 people; the
detector is calibrated (1% of benign inputs outside the band) on those 140 training photos.
- Benign keys: each sends the 260 photos the model never trained on (3 held-out photos of
  the 20 people, all 10 of the other 20), in a random order, in requests of 1 to 8; a
  second benign scenario draws 300 of them with replacement (retries and re-checks).
- Attacking keys: each runs one black-box attack through one key, in requests of 64: the
  score attack (full scores, top-3) and the label-only attack, each in the data-free DCT
  basis and in a public prior (PCA of the other 20 people's photos), over several seeds.
TPR is the share of attacking keys flagged, FPR the share of benign keys; also the median
number of queries an attack had sent when it was flagged.

Run: ``python benchmarks/probe_detector.py [--seeds 5] [--benign-keys 50]
[--out benchmarks/results/probe_detector.json]`` (about 3 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from mirisk.access.oracle import Oracle
from mirisk.access.policies import parse_policy
from mirisk.attacks.basis import dct_basis, public_face_basis
from mirisk.attacks.blackbox import ScoreBlackBox
from mirisk.attacks.contract import seeded
from mirisk.attacks.labelonly import BoundaryRepulsion
from mirisk.data import ImageDataset, load_faces
from mirisk.data.split import split_per_subject
from mirisk.gateway.detector import ProbeDetector, calibrate
from mirisk.gateway.watch import WatchedOracle
from mirisk.pipelines.faces import train_face_target
from mirisk.runtime import versions

PRIVATE_PEOPLE = 20
ATTACKS = {
    "scores, DCT basis": ("scores", "dct", "blackbox"),
    "scores, public prior": ("scores", "public", "blackbox"),
    "top-3, DCT basis": ("topk:3", "dct", "blackbox"),
    "label-only, DCT basis": ("label", "dct", "labelonly"),
    "label-only, public prior": ("label", "public", "labelonly"),
}


def benign_keys(detector: ProbeDetector, photos: np.ndarray, keys: int, with_replacement: bool, seed: int) -> float:
    """The share of benign keys the detector flags."""
    rng = np.random.default_rng(seed)
    flagged = 0
    for key in range(keys):
        order = rng.choice(len(photos), 300, replace=True) if with_replacement else rng.permutation(len(photos))
        cuts = np.cumsum(rng.integers(1, 9, len(order)))
        batches = np.split(photos[order], cuts[cuts < len(order)])
        flagged += any(detector.observe(f"benign-{with_replacement}-{seed}-{key}", batch) is not None
                       for batch in batches)
    return flagged / keys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--benign-keys", type=int, default=50)
    parser.add_argument("--fpr", type=float, default=0.01, help="Per-input false-positive rate of the calibration.")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/probe_detector.json"))
    args = parser.parse_args()
    started = time.perf_counter()
    faces = load_faces(None)
    mask = faces.labels < PRIVATE_PEOPLE
    private = ImageDataset(faces.images[mask], faces.labels[mask], faces.subject_ids[mask],
                           faces.class_names[:PRIVATE_PEOPLE], faces.source)
    public = faces.images[faces.labels >= PRIVATE_PEOPLE]
    split = split_per_subject(private, n_train=7, seed=0)
    target = train_face_target("softmax", private)
    settings = calibrate(private.images[split.train], args.fpr)
    detector = ProbeDetector(settings, private.images[0].size)
    benign = np.concatenate([private.images[split.held_out], public])
    false_positives = {
        "each unseen photo once": benign_keys(detector, benign, args.benign_keys, False, 0),
        "300 draws with replacement": benign_keys(detector, benign, args.benign_keys, True, 1),
    }
    bases = {"dct": dct_basis(target.input_shape), "public": public_face_basis(public)}
    attacks = {}
    for name, (policy, basis, kind) in ATTACKS.items():
        flagged_at = []
        for seed in range(args.seeds):
            watched = WatchedOracle(Oracle(target, parse_policy(policy)), detector, batch=64, key_id=f"{name}-{seed}")
            search = ScoreBlackBox(iterations=5) if kind == "blackbox" else BoundaryRepulsion(iterations=5)
            replace(search, basis=bases[basis]).run(watched, torch.arange(PRIVATE_PEOPLE), generator=seeded(seed))
            flagged_at.append(watched.flagged_at)
        caught = [q for q in flagged_at if q is not None]
        attacks[name] = {"true_positive_rate": len(caught) / len(flagged_at),
                         "median_queries_to_flag": float(np.median(caught)) if caught else None,
                         "flagged_at": flagged_at}
        print(f"{name}: TPR {attacks[name]['true_positive_rate']:.0%}, flagged after a median "
              f"{attacks[name]['median_queries_to_flag']} queries")
    for scenario, rate in false_positives.items():
        print(f"benign ({scenario}): FPR {rate:.0%} of {args.benign_keys} keys")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "benchmark": "probe_detector", "date": time.strftime("%Y-%m-%d"),
        "settings": {"calibration_fpr": args.fpr, "low": settings.low, "high": settings.high,
                     "neighbours": settings.neighbours, "window": settings.window,
                     "probe_fraction": settings.probe_fraction, "history": settings.history,
                     "sketch_size": settings.sketch_size, "seeds": args.seeds, "benign_keys": args.benign_keys},
        "attacks": attacks, "benign_false_positive_rate": false_positives,
        "seconds": time.perf_counter() - started, "versions": versions()}, indent=2) + "\n")


if __name__ == "__main__":
    main()
