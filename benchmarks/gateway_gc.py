"""The garbage collector's pauses in `mirisk serve`: the gateway (detector off, softmax, one
face per request) with its startup heap frozen (`gc.freeze`, as shipped) and without,
loaded by wrk in alternating rounds on the same pinned core. Each server logs the length of
every full (generation 2) collection; wrk gives the 99th percentile latency.

Needs wrk. Run: ``python benchmarks/gateway_gc.py [--rounds 3] [--seconds 6]
[--out benchmarks/results/gateway_gc.json]`` (about 2 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

# Run as the server: time each full collection into GC_LOG, and leave the heap unfrozen
# when GC_UNFROZEN is set, then start `mirisk serve` with the given arguments.
SERVER = """
import gc, os, sys, time
log, started = open(os.environ["GC_LOG"], "w"), {}
def timed(phase, info):
    if phase == "start":
        started[info["generation"]] = time.perf_counter()
    elif info["generation"] == 2:
        log.write(f"{(time.perf_counter() - started[2]) * 1e3:.3f}\\n"); log.flush()
gc.callbacks.append(timed)
if os.environ.get("GC_UNFROZEN"):
    import uvicorn
    from mirisk.gateway import http_server
    http_server.run_server = lambda config: uvicorn.Server(config).run()
from mirisk.cli import app
sys.argv = ["mirisk", *sys.argv[1:]]
app()
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/gateway_gc.json"))
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    import gateway_overhead as bench

    from mirisk.runtime import versions

    work, key, model, bodies = bench.one_face_setup("mirisk-gateway-gc-")
    variants = {"frozen": {}, "unfrozen": {"GC_UNFROZEN": "1"}}
    servers = {}
    for name, extra in variants.items():
        port = bench.free_port()
        environment = {**os.environ, "GC_LOG": str(work / f"{name}.log"), **extra}
        command = [sys.executable, "-c", SERVER, "serve", "--model", str(model), "--db", str(work / "gateway.db"),
                   "--port", str(port), "--policy", "label", "--detector", "off"]
        servers[name] = (bench.launch(command, port, environment), port)
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    pauses: dict[str, list[float]] = {}
    try:
        for name, (process, port) in servers.items():
            bench.finish_load(bench.start_load(process, port, bodies, 3, 8, key))  # warm-up
        marks = {name: len((work / f"{name}.log").read_text().split()) for name in variants}
        for _ in range(args.rounds):
            for name, (process, port) in servers.items():
                rounds[name].append(bench.finish_load(bench.start_load(process, port, bodies, args.seconds, 8, key)))
        for name in variants:
            pauses[name] = [float(v) for v in (work / f"{name}.log").read_text().split()[marks[name]:]]
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait()
    summary = {name: {"p99_ms_median": statistics.median(r["p99_ms"] for r in rounds[name]),
                      "p99_ms_rounds": [r["p99_ms"] for r in rounds[name]],
                      "requests_per_second_median": statistics.median(r["requests_per_second"] for r in rounds[name]),
                      "full_collections": len(pauses[name]),
                      "full_collection_ms_median": statistics.median(pauses[name]) if pauses[name] else None,
                      "full_collection_ms_max": max(pauses[name], default=None)} for name in variants}
    for name, row in summary.items():
        print(f"{name}: p99 {row['p99_ms_median']:.1f} ms (rounds {', '.join(f'{v:.1f}' for v in row['p99_ms_rounds'])}),"
              f" {row['requests_per_second_median']:.0f} req/s, {row['full_collections']} full collections under load,"
              f" median {row['full_collection_ms_median']} ms, max {row['full_collection_ms_max']} ms", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"benchmark": "gateway_gc", "date": time.strftime("%Y-%m-%d"),
                                    "rounds": args.rounds, "seconds": args.seconds, "results": summary,
                                    "versions": versions()}, indent=2) + "\n")


if __name__ == "__main__":
    main()
