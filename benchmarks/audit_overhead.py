"""The audit's own overhead, old code path against new, side by side in one script.

The previous commit's ``src/`` is exported into a temporary folder (``git archive``), and the
same face model (the demo's softmax recogniser, trained once here) is audited by each side in
its own process, one after the other: once for wall time at the given settings, and once under
cProfile at a few iterations (the same units) to count how often the model is loaded and the
pixel evaluator fitted. The two report.json files must agree on every verdict and attack metric.

With ``--pairs N`` the timed audits alternate old, new, old, new ... N times and the speed-up
is the median of the N pairs' ratios (each side's CPU time in user and kernel mode, page
faults and peak memory are recorded too); ``--no-count`` skips the profiled runs.

Run: ``python benchmarks/audit_overhead.py [--old REV] [--settings demo|fast] [--pairs N] [--no-count]
[--out FILE]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAST = {"miface_iterations": 100, "blackbox_iterations": 10, "labelonly_iterations": 10}
# One side's audit, run in a fresh process whose PYTHONPATH puts that side's code first.
SIDE = r"""
import cProfile, json, pstats, resource, sys, time
from pathlib import Path
import mirisk
from mirisk.audit import plan_audit, run_audit
model, config, out, profile = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), sys.argv[4] == "1"
config = Path(config) if config else None
profiler = cProfile.Profile() if profile else None
started = time.perf_counter()
if profiler: profiler.enable()
plan, subject = plan_audit(model, None, config, None, None)
run_audit(plan, subject, out, False, True)
if profiler: profiler.disable()
seconds = time.perf_counter() - started
counts = {}
if profiler:
    stats = pstats.Stats(profiler).stats
    def calls(path_end, name):
        return sum(value[1] for (file, _, function), value in stats.items()
                   if file.replace("\\", "/").endswith(path_end) and function == name)
    counts = {"model_loads": calls("models/store.py", "load_target"),
              "data_loads": calls("data/faces.py", "load_faces"),
              "evaluator_fits": calls("metrics/identification.py", "fit")}
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": seconds, "user_seconds": usage.ru_utime, "system_seconds": usage.ru_stime,
                  "minor_faults": usage.ru_minflt, "max_rss_mb": usage.ru_maxrss / 1024, "code": mirisk.__file__,
                  **counts}))
"""


def export_old(revision: str, folder: Path) -> Path:
    """The ``src/`` of ``revision``, extracted under ``folder``."""
    archive = folder / "old.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", "-o", str(archive), revision, "src"],
                   check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(folder / "old", filter="data")
    return folder / "old" / "src"


def run_side(source: Path, model: Path, config: Path | None, out: Path, profile: bool) -> dict:
    environment = {**os.environ, "PYTHONPATH": str(source)}
    done = subprocess.run([sys.executable, "-c", SIDE, str(model), str(config or ""), str(out), "1" if profile else "0"],
                          env=environment, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the audit failed on {source}:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if not result["code"].startswith(str(source)):
        raise SystemExit(f"the side meant to run {source} imported {result['code']}")
    return result


def comparable(report: dict) -> dict:
    """What must agree between the two code paths: verdicts, and every attack but its time."""
    return {"verdict": report["verdict"], "recommendations": report["recommendations"],
            "attacks": [{key: value for key, value in attack.items() if key != "seconds"} for attack in report["attacks"]],
            "defences": report["defences"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--old", default="HEAD~1", help="The revision of the old code path.")
    parser.add_argument("--settings", choices=("demo", "fast"), default="demo",
                        help="demo: the demo's audit settings for the timed runs; fast: a few iterations.")
    parser.add_argument("--pairs", type=int, default=1, help="Alternating old/new timed audits.")
    parser.add_argument("--count", action=argparse.BooleanOptionalAction, default=True,
                        help="Count model loads and evaluator fits in a profiled run of each side.")
    parser.add_argument("--out", default="benchmarks/results/audit_overhead.json")
    args = parser.parse_args()
    from mirisk.data import load_faces
    from mirisk.models import save_target
    from mirisk.pipelines.faces import train_face_target
    from mirisk.runtime import prepare_torch, versions

    prepare_torch()
    with tempfile.TemporaryDirectory(prefix="mirisk-overhead-") as scratch:
        scratch = Path(scratch)
        old = export_old(args.old, scratch)
        model = save_target(train_face_target("softmax", load_faces(None)), scratch / "model")
        fast = scratch / "fast.toml"
        fast.write_text("".join(f"{key} = {value}\n" for key, value in FAST.items()))
        timed_config = None if args.settings == "demo" else fast
        sides = {"old": old, "new": ROOT / "src"}
        timed: dict[str, list[dict]] = {name: [] for name in sides}
        for pair in range(args.pairs):
            for name, source in sides.items():
                timed[name].append(run_side(source, model, timed_config, scratch / f"{name}-timed-{pair}",
                                            profile=False))
                print(f"pair {pair}, {name}: {timed[name][-1]['seconds']:.0f} s, kernel "
                      f"{timed[name][-1]['system_seconds']:.0f} s", flush=True)
        runs = {name: {"timed": [{key: value for key, value in run.items() if key != "code"} for run in timed[name]]}
                for name in sides}
        if args.count:
            for name, source in sides.items():
                counted = run_side(source, model, fast, scratch / f"{name}-counted", profile=True)
                runs[name].update({key: counted[key] for key in ("model_loads", "data_loads", "evaluator_fits")})
                print(f"{name}: {runs[name]['model_loads']} model loads, {runs[name]['evaluator_fits']} evaluator "
                      "fits", flush=True)
        reports = {name: json.loads((scratch / f"{name}-timed-0" / "report.json").read_text()) for name in sides}
        agree = comparable(reports["old"]) == comparable(reports["new"])
        ratios = [old_run["seconds"] / new_run["seconds"] for old_run, new_run in zip(timed["old"], timed["new"])]
    result = {"settings": vars(args), "old_revision": subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", args.old], capture_output=True, text=True).stdout.strip(),
        "runs": runs, "pair_speedups": ratios, "speedup": float(statistics.median(ratios)), "reports_agree": agree,
        "verdict": reports["new"]["verdict"]["overall"], "versions": versions(),
        "date": time.strftime("%Y-%m-%d")}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"speedup {result['speedup']:.2f}x; reports agree: {agree}")
    if not agree:
        raise SystemExit("the old and new code paths disagree on the report")


if __name__ == "__main__":
    main()
