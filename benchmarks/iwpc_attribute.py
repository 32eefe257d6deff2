"""The warfarin case study measured: every attribute attack against the linear and gbm dosing
models, and the DP sweep over epsilon with mean and standard deviation over seeds.

Run: ``python benchmarks/iwpc_attribute.py [--repeats 5] [--out benchmarks/results/iwpc_attribute.json]``
(about 3 minutes on 2 cores with 5 repeats).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mirisk.data.iwpc import DEMOGRAPHICS, IWPC_2009_COEFFICIENTS, IWPC_SCHEMA, load_iwpc, split_cohort
from mirisk.pipelines.attribute import AttributeSetting, run_attribute_attack
from mirisk.pipelines.iwpc import DEFAULT_EPSILONS, SENSITIVE, dp_sweep, train_iwpc_target
from mirisk.runtime import versions

SETTINGS = (("fredrikson", "value", "true"), ("fredrikson", "value", "model"), ("fredrikson", "band", "true"),
            ("learned", "value", "true"), ("learned", "band", "true"))


def attacks(split) -> list[dict]:
    records = pd.concat([split.train, split.test], ignore_index=True)
    rows = []
    for kind in ("linear", "gbm"):
        model = train_iwpc_target(kind, split=split)
        for sensitive in SENSITIVE:
            for attack, output, outcome in SETTINGS:
                payload = run_attribute_attack(
                    model, records, split.aux, AttributeSetting(sensitive, DEMOGRAPHICS, attack, output, outcome)
                ).payload
                metrics = payload["metrics"]
                rows.append({
                    "model": kind, "model_test": model.metrics["test"], "sensitive": sensitive, "attack": attack,
                    "served": output, "outcome": outcome, "queries": payload["queries_used"],
                    "seconds": payload["seconds"], "train": metrics["train"], "test": metrics["test"],
                })
                print(f"{kind:6} {sensitive} {attack:10} {output:5} {outcome:5} "
                      f"train {metrics['train']['accuracy']:.3f} test {metrics['test']['accuracy']:.3f} "
                      f"prior {metrics['baseline_accuracy']:.3f} ideal {metrics['train']['ideal_accuracy']:.3f} "
                      f"mcc {metrics['train']['mcc']:.3f} gmean {metrics['train']['gmean']:.3f}", flush=True)
    return rows


def sweep(split, repeats: int) -> list[dict]:
    per_seed = [dp_sweep(split, DEFAULT_EPSILONS, repeats=1, seed=seed) for seed in range(repeats)]
    points = []
    for index, epsilon in enumerate(DEFAULT_EPSILONS):
        runs = [seed_points[index] for seed_points in per_seed] if epsilon is not None else [per_seed[0][index]]
        keys = [key for key, value in runs[0].items() if isinstance(value, float) and key != "epsilon"]
        point = {"epsilon": epsilon, "repeats": len(runs)}
        for key in keys:
            values = [run[key] for run in runs]
            point[key] = {"mean": float(np.mean(values)), "std": float(np.std(values))}
        points.append(point)
        print(f"epsilon {epsilon}: MAE {point['mae']['mean']:.1f}±{point['mae']['std']:.1f}, "
              f"within20 {point['within_20pct']['mean']:.3f}, VKORC1 (dose) {point['vkorc1_true_train']['mean']:.3f}"
              f"±{point['vkorc1_true_train']['std']:.3f}, VKORC1 (model dose) {point['vkorc1_model_train']['mean']:.3f}, "
              f"CYP2C9 {point['cyp2c9_true_train']['mean']:.3f}", flush=True)
    return points


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5, help="Seeds per DP budget.")
    parser.add_argument("--out", default="benchmarks/results/iwpc_attribute.json")
    args = parser.parse_args()
    started = time.perf_counter()
    split = split_cohort(load_iwpc(None))
    linear = train_iwpc_target("linear", split=split)
    coefficients = {name: {"ours": float(value), "iwpc_2009": IWPC_2009_COEFFICIENTS[name]}
                    for name, value in zip(IWPC_SCHEMA.encoded_names, linear.coefficients)}
    result = {
        "setting": {"patients": {"train": len(split.train), "aux": len(split.aux), "test": len(split.test)},
                    "known": list(DEMOGRAPHICS), "repeats": args.repeats},
        "linear_coefficients": coefficients,
        "attacks": attacks(split),
        "dp_sweep": sweep(split, args.repeats),
        "seconds": time.perf_counter() - started,
        "date": time.strftime("%Y-%m-%d"),
        "versions": versions(),
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out} in {result['seconds']:.0f} s")


if __name__ == "__main__":
    main()
