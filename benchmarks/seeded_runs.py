"""What the seeded benchmarks share: runs made here or read from earlier outputs (one seed per
process, run side by side), rates pooled over seeds with a 95% Wilson interval, one JSON out."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from mirisk.metrics.intervals import wilson_interval
from mirisk.runtime import versions


def pooled_rate(rates: list[float], trials_each: list[int]) -> dict:
    """One rate from per-seed ``rates``, each over ``trials_each`` trials (people attacked)."""
    hits = sum(round(rate * n) for rate, n in zip(rates, trials_each, strict=True))
    trials = sum(trials_each)
    return {"rate": hits / trials, "ci": list(wilson_interval(hits, trials)), "trials": trials, "per_seed": rates}


def judged_line(row: dict, pixel: str = "identification_top1") -> str:
    """A pooled row as the benchmarks print it: the judge's top-1 with its interval, face
    rate, held-out re-ID with its interval, each twin's rate where the row has it, and the
    pixel evaluator (under the key ``pixel``)."""
    def with_interval(rate: dict) -> str:
        return f"{rate['rate']:.1%} [{rate['ci'][0]:.1%}, {rate['ci'][1]:.1%}]"

    def twin(key: str) -> str:
        return f" (twin {row[key]['rate']:.1%})" if key in row else ""

    return (f"judge {with_interval(row['judge_top1'])}{twin('baseline_judge_top1')} "
            f"faces {row['face_rate']['rate']:.0%} re-ID {with_interval(row['reid_top1'])}"
            f"{twin('baseline_reid_top1')} pixel {row[pixel]['rate']:.1%}")


def seeded_runs(args: argparse.Namespace, key: str, run_seed: Callable[[int], dict]) -> list[dict]:
    """The runs under ``key`` of the outputs in ``args.runs_from``, or one ``run_seed(seed)``
    per seed of ``args.seeds``."""
    earlier = [run for path in args.runs_from or () for run in json.loads(path.read_text())[key]]
    return earlier or [run_seed(seed) for seed in args.seeds]


def write_results(args: argparse.Namespace, key: str, runs: list[dict], summary: list[dict], **settings) -> None:
    """``args.out``: the settings (with the seeds actually run), the pooled summary and the runs."""
    recorded = vars(args) | {"runs_from": [str(path) for path in args.runs_from or ()],
                             "seeds": [run["seed"] for run in runs], **settings}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"settings": recorded, "summary": summary, key: runs,
                                          "versions": versions()}, indent=2) + "\n")
