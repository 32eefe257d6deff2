"""Gradient leakage in federated learning, measured on the bundled faces (56 x 46 after 2x
pooling), a freshly initialised sigmoid LeNet, one client:

1. each attack (DLG, iDLG, Inverting Gradients) on FedSGD batches of 1, 4 and 8 images;
2. FedSGD vs FedAvg (5 local steps);
3. each defence against the attacks: Gaussian noise (clip at the update's own norm, so the
   noise scale is relative to the signal), top-k sparsification, 8- and 4-bit
   quantisation, secure aggregation over 4 and 8 clients.
Means over ``--seeds`` client draws (rates pooled over images x draws, with 95% Wilson intervals);
seconds per reconstruction.

Run: ``python benchmarks/federated_leakage.py [--seeds 3] [--iterations 1000]
[--out benchmarks/results/federated_leakage.json]`` (about 15 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from mirisk.data import load_faces
from mirisk.fl.simulation import ClientSettings, UpdateDefence
from mirisk.pipelines.federated import FederatedSetting, run_gradient_attack
from mirisk.runtime import versions
from seeded_runs import pooled_rate

ATTACKS = ("dlg", "idlg", "inverting-gradients")


def measure(faces, setting: FederatedSetting, seeds: int) -> dict:
    """Means over the client draws; re-identification (eigenfaces) and the independent
    judge's top-1 and face rate pooled over images x draws with a 95% Wilson interval."""
    runs = [run_gradient_attack(faces, replace(setting, seed=seed))[0].payload for seed in range(seeds)]
    keys = ("psnr_mean", "ssim_mean", "label_accuracy")
    row = {key: float(np.mean([run["metrics"][key] for run in runs])) for key in keys}
    images = [len(run["metrics"]["per_image"]["reidentified"]) for run in runs]
    row["reid_top1"] = pooled_rate([run["metrics"]["reid_top1"] for run in runs], images)
    row["judge_top1"] = pooled_rate([run["metrics"]["independent"]["identification_top1"] for run in runs], images)
    row["face_rate"] = pooled_rate([run["metrics"]["independent"]["face_rate"] for run in runs], images)
    row["psnr_std"] = float(np.std([run["metrics"]["psnr_mean"] for run in runs]))
    row["seconds"] = float(np.mean([run["seconds"] for run in runs]))
    row["defence"] = runs[0]["round"]["defence"]
    return row


def shown(value):
    """A row's value as the progress line prints it: floats rounded, a pooled rate as its rate."""
    if isinstance(value, dict):
        value = value["rate"]
    return round(value, 3) if isinstance(value, float) else value


def update_norm(faces, setting: FederatedSetting) -> float:
    _, record = run_gradient_attack(faces, replace(setting, iterations=1))
    return record.update_norm()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/federated_leakage.json"))
    args = parser.parse_args()
    torch.set_flush_denormal(True)
    faces = load_faces(None)
    base = FederatedSetting(architecture="lenet", iterations=args.iterations)
    rows = []

    def record(group: str, label: str, setting: FederatedSetting) -> None:
        row = {"group": group, "label": label, "attack": setting.attack, "batch": setting.batch,
               **measure(faces, setting, args.seeds)}
        rows.append(row)
        print(json.dumps({k: shown(v) for k, v in row.items() if k != "defence"}), flush=True)

    for attack in ATTACKS:
        for batch in (1, 4, 8):
            record("attack x batch", f"{attack}, fedsgd", replace(base, attack=attack, batch=batch))
    for attack in ("idlg", "inverting-gradients"):
        record("protocol", f"{attack}, fedavg 5 steps",
               replace(base, attack=attack, client=ClientSettings("fedavg", local_steps=5, local_learning_rate=0.1)))
    norm = update_norm(faces, base)
    defences = {
        **{f"noise {sigma:g} x norm": UpdateDefence(clip=norm, noise=sigma) for sigma in (1e-5, 1e-4, 1e-3)},
        "top 10% entries": UpdateDefence(sparsify=0.1), "top 1% entries": UpdateDefence(sparsify=0.01),
        "8-bit": UpdateDefence(quantise=8), "4-bit": UpdateDefence(quantise=4),
    }
    for attack in ("idlg", "inverting-gradients"):
        for label, defence in defences.items():
            record("defence", f"{attack}, {label}", replace(base, attack=attack, defence=defence))
        for clients in (4, 8):
            record("defence", f"{attack}, secure aggregation of {clients} clients",
                   replace(base, attack=attack, n_clients=clients))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"seeds": args.seeds, "iterations": args.iterations, "update_norm": norm,
                                    "rows": rows, "versions": versions(), "date": time.strftime("%Y-%m-%d")},
                                   indent=2))


if __name__ == "__main__":
    main()
