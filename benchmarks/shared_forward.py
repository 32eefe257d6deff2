"""What sharing one forward pass saves the gateway: the served model answering 8 one-face
requests in one pass (``ServedModel.answer_all``) against 8 passes of one face, run
alternately in one process so that machine drift hits both alike, for the softmax model
and the CNN, over 3 seeds (the seed draws the faces and the training split).

Run: ``python benchmarks/shared_forward.py [--out benchmarks/results/shared_forward.json]``
(about 1 minute on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from mirisk.data import load_faces
from mirisk.gateway.serving import ServedModel
from mirisk.pipelines.faces import train_face_target
from mirisk.runtime import prepare_torch, versions


def timed(work: Callable[[], object], repeats: int) -> float:
    """Mean seconds of one call of ``work`` over ``repeats`` calls."""
    started = time.perf_counter()
    for _ in range(repeats):
        work()
    return (time.perf_counter() - started) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--group", type=int, default=8)
    parser.add_argument("--blocks", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/shared_forward.json"))
    args = parser.parse_args()
    faces = load_faces(None)
    rows = []
    for architecture in ("softmax", "cnn"):
        for seed in range(3):
            prepare_torch(seed)
            torch.set_num_threads(1)
            served = ServedModel(train_face_target(architecture, faces, split_seed=seed))
            picks = np.random.default_rng(seed).choice(len(faces.images), args.group, replace=False)
            requests = [(faces.images[i:i + 1].astype(np.float32), "scores") for i in picks]
            runs = [lambda: [served.answer(batch, policy) for batch, policy in requests],
                    lambda: served.answer_all(requests)]
            apart, together = [], []
            for block in range(args.blocks):
                first, second = (0, 1) if block % 2 == 0 else (1, 0)
                seconds = {first: timed(runs[first], 5), second: timed(runs[second], 5)}
                apart.append(seconds[0])
                together.append(seconds[1])
            ratio = statistics.median(a / t for a, t in zip(apart, together, strict=True))
            rows.append({"model": architecture, "seed": seed, "group": args.group,
                         "apart_ms": 1e3 * statistics.median(apart), "together_ms": 1e3 * statistics.median(together),
                         "speedup": ratio})
            print(f"{architecture} seed {seed}: {args.group} passes of one face {rows[-1]['apart_ms']:.2f} ms, one "
                  f"pass of {args.group} {rows[-1]['together_ms']:.2f} ms: {ratio:.2f}x", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"benchmark": "shared_forward", "date": time.strftime("%Y-%m-%d"),
                                    "blocks": args.blocks, "results": rows, "versions": versions()}, indent=2) + "\n")


if __name__ == "__main__":
    main()
