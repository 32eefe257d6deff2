"""A hospital's own tabular models, audited from their files: a dosing regressor and a dose-band
classifier (scikit-learn pipelines, boosted trees), each saved with skops and exported to ONNX,
attacked for VKORC1 from the demographics over several IWPC splits. Measures whether the two
copies give the same inference and how much each leaks beside its baselines.

Run: ``python benchmarks/imported_tabular.py [--seeds 0,1,2] [--out benchmarks/results/imported_tabular.json]``
(about 2 minutes on 2 cores with 3 seeds).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the test suite's model files

from mirisk.data.iwpc import DEMOGRAPHICS, load_iwpc, split_cohort  # noqa: E402
from mirisk.metrics.intervals import wilson_interval  # noqa: E402
from mirisk.models.tabular_import import load_manifest_model  # noqa: E402
from mirisk.pipelines.attribute import AttributeSetting, run_attribute_attack  # noqa: E402
from mirisk.pipelines.iwpc import attack_tables  # noqa: E402
from mirisk.runtime import prepare_torch, versions  # noqa: E402
from tests.tabular_files import BAND, BAND_CLASSES, dosing_patients_folder, write_tabular_manifest  # noqa: E402

SETTINGS = (("fredrikson", "value"), ("fredrikson", "band"), ("learned", "value"), ("learned", "band"))
MODELS = {"dose regressor": ("dose", {}),
          "band classifier": ("band", {"output": None, "target": BAND, "target_bounds": None,
                                       "classes": BAND_CLASSES})}


def measure(seed: int) -> list[dict]:
    split = split_cohort(load_iwpc(None), seed=seed)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = dosing_patients_folder(Path(scratch), split)
        for model_name, (stem, fields) in MODELS.items():
            for fmt in ("skops", "onnx"):
                manifest = write_tabular_manifest(folder, f"{stem}.{fmt}", **fields)
                model = load_manifest_model(manifest)
                records, population = attack_tables(model, folder / "patients.csv", None, seed=seed)
                for attack, output in SETTINGS:
                    started = time.perf_counter()
                    payload = run_attribute_attack(model, records, population,
                                                   AttributeSetting("vkorc1", DEMOGRAPHICS, attack, output,
                                                                    seed=seed)).payload
                    train = payload["metrics"]["train"]
                    rows.append({"seed": seed, "model": model_name, "format": fmt, "attack": attack,
                                 "served": payload["threat_model"]["served"], "fit": model.metrics,
                                 "train": train, "test": payload["metrics"]["test"],
                                 "correct_train": round(train["accuracy"] * train["n"]),
                                 "seconds": time.perf_counter() - started})
                    print(f"seed {seed} {model_name:15} {fmt:5} {attack:10} {rows[-1]['served']:13} "
                          f"train {train['accuracy']:.3f} prior {train['baseline_accuracy']:.3f} "
                          f"population {train['population_accuracy']:.3f}", flush=True)
    return rows


def summary(rows: list[dict]) -> list[dict]:
    """Per model, attack and served output: skops against ONNX (largest difference in
    patients over seeds), and the pooled accuracy on training patients with its interval."""
    table = []
    keys = sorted({(row["model"], row["attack"], row["served"]) for row in rows})
    for model, attack, served in keys:
        chosen = [row for row in rows if (row["model"], row["attack"], row["served"]) == (model, attack, served)]
        by_seed = {}
        for row in chosen:
            by_seed.setdefault(row["seed"], {})[row["format"]] = row
        gap = max(abs(pair["skops"]["correct_train"] - pair["onnx"]["correct_train"]) for pair in by_seed.values())
        onnx = [pair["onnx"] for pair in by_seed.values()]
        correct, trials = sum(row["correct_train"] for row in onnx), sum(row["train"]["n"] for row in onnx)
        low, high = wilson_interval(correct, trials)
        table.append({"model": model, "attack": attack, "served": served, "max_skops_onnx_gap_patients": gap,
                      "accuracy": correct / trials, "interval": [low, high],
                      "prior": float(np.mean([row["train"]["baseline_accuracy"] for row in onnx])),
                      "population": float(np.mean([row["train"]["population_accuracy"] for row in onnx])),
                      "seconds_onnx_over_skops": float(np.mean([pair["onnx"]["seconds"] / pair["skops"]["seconds"]
                                                                for pair in by_seed.values()]))})
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/imported_tabular.json"))
    arguments = parser.parse_args()
    prepare_torch(0)
    seeds = [int(seed) for seed in arguments.seeds.split(",")]
    rows = [row for seed in seeds for row in measure(seed)]
    result = {"seeds": seeds, "summary": summary(rows), "rows": rows, "versions": versions()}
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    arguments.out.write_text(json.dumps(result, indent=2))
    for line in result["summary"]:
        print(f"{line['model']:15} {line['attack']:10} {line['served']:13} gap {line['max_skops_onnx_gap_patients']} "
              f"acc {line['accuracy']:.3f} [{line['interval'][0]:.3f}, {line['interval'][1]:.3f}] "
              f"prior {line['prior']:.3f} population {line['population']:.3f} "
              f"onnx/skops time {line['seconds_onnx_over_skops']:.2f}")


if __name__ == "__main__":
    main()
