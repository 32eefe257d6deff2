"""A defence sweep of 8 points on one machine: the local backend against Ray.

Each point retrains the softmax face recogniser under one defence (no defence; weight
decay 1e-3 and 1e-2; dropout 0.1 and 0.3; label smoothing +0.05 and -0.05; early stopping
after 5 epochs) on 7 photos per person, then runs MI-Face (200 steps) and the score attack
(20 NES steps) and measures identification. Three runs, one after another in this process:

1. local backend, torch's default threads (all cores), one point after another;
2. local backend, one thread per point;
3. Ray (a private cluster on this machine, ``ray.init()``), one CPU and one thread per
   task, so as many points run at once as there are cores.

Runs 2 and 3 use the same threads per point, so their results must be equal.

Run: ``python benchmarks/ray_sweep.py [--out benchmarks/results/ray_sweep.json]`` (about 5
minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from mirisk.execution.backends import LocalBackend, RayBackend
from mirisk.pipelines.face_sweep import classic_sweep_attacks, epsilon_recipes, face_sweep, parse_recipes
from mirisk.runtime import versions

DEFENCES = ("weight-decay=0.001,weight-decay=0.01,dropout=0.1,dropout=0.3,label-smoothing=0.05,"
            "label-smoothing=-0.05,early-stopping=5")


def timed_sweep(backend) -> tuple[float, list[dict]]:
    started = time.perf_counter()
    points = face_sweep("bundled:att_faces", "softmax", epsilon_recipes((None,)) + parse_recipes(DEFENCES), (7,),
                        classic_sweep_attacks(miface_iterations=200, blackbox_iterations=20), backend=backend)
    return time.perf_counter() - started, points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/ray_sweep.json"))
    args = parser.parse_args()
    runs = {}
    for name, make in (("local, default threads", lambda: LocalBackend()),
                       ("local, 1 thread per point", lambda: LocalBackend(1)),
                       ("ray, 1 CPU per task", lambda: RayBackend(None, 1))):
        started = time.perf_counter()
        backend = make()
        setup = time.perf_counter() - started
        seconds, points = timed_sweep(backend)
        runs[name] = {"seconds": seconds, "setup_seconds": setup, "points": points}
        print(f"{name}: {seconds:.1f} s for {len(points)} points (+{setup:.1f} s to start)")
    same = runs["local, 1 thread per point"]["points"] == runs["ray, 1 CPU per task"]["points"]
    print(f"Ray's points equal the local ones at 1 thread: {same}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "benchmark": "ray_sweep", "date": time.strftime("%Y-%m-%d"), "cores": os.cpu_count(),
        "points": len(runs["ray, 1 CPU per task"]["points"]), "ray_equals_local": same,
        "runs": runs, "versions": versions()}, indent=2) + "\n")


if __name__ == "__main__":
    main()
