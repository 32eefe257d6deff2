"""DP-SGD step time against plain SGD on the same model and batches, in one process.

Opacus per-example gradients by hooks (the mode mirisk trains with) and by ghost clipping
(Li et al. 2022; Bu et al. 2023), on each face-recogniser family; the ratio of median step
times, DP over plain, is the overhead (goal: <= 2.0x).

Run: ``python benchmarks/dp_overhead.py [--steps 30] [--out benchmarks/results/dp_overhead.json]``
(about 2 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from mirisk.data import load_faces
from mirisk.models.architectures import build_model
from mirisk.runtime import prepare_torch, versions

BATCH = 64


def step_times(architecture: str, mode: str, data: TensorDataset, steps: int) -> list[float]:
    """Seconds per optimiser step (forward, backward, clip/noise, update), after 3 warm-up steps."""
    prepare_torch(0)
    faces_shape, n_classes = tuple(data.tensors[0].shape[1:]), int(data.tensors[1].max()) + 1
    module = build_model(architecture, faces_shape, n_classes)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.1, momentum=0.9)
    loader = DataLoader(data, batch_size=BATCH, shuffle=True, generator=torch.Generator().manual_seed(0))
    criterion = nn.CrossEntropyLoss()
    if mode != "plain":
        from opacus import PrivacyEngine

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            engine = PrivacyEngine(accountant="prv")
            private = engine.make_private(module=module, optimizer=optimizer, data_loader=loader, noise_multiplier=1.0,
                                          max_grad_norm=1.0, criterion=criterion, grad_sample_mode=mode,
                                          poisson_sampling=False)
        module, optimizer, loader = private[0], private[1], private[-1]
        if mode == "ghost":
            criterion = private[2]
    times = []
    while len(times) < steps + 3:
        for inputs, labels in loader:
            started = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            criterion(module(inputs), labels).backward()
            optimizer.step()
            times.append(time.perf_counter() - started)
            if len(times) == steps + 3:
                break
    return times[3:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/dp_overhead.json"))
    args = parser.parse_args()
    faces = load_faces(None)
    data = TensorDataset(torch.as_tensor(faces.images), torch.as_tensor(faces.labels))
    rows = []
    for architecture in ("softmax", "mlp", "cnn"):
        medians = {mode: statistics.median(step_times(architecture, mode, data, args.steps))
                   for mode in ("plain", "hooks", "ghost")}
        row = {"architecture": architecture, "batch": BATCH, "median_step_s": medians,
               "overhead_hooks": medians["hooks"] / medians["plain"],
               "overhead_ghost": medians["ghost"] / medians["plain"]}
        rows.append(row)
        print(json.dumps(row))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"steps": args.steps, "rows": rows, "versions": versions(),
                                    "date": time.strftime("%Y-%m-%d")}, indent=2))


if __name__ == "__main__":
    main()
