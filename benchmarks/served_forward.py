"""The model's forward pass as the servers run it under load: thread CPU time per input row
and rows per pass, in the bare server (a pass per request) and in the gateway as shipped
(detector off; a group's requests share one pass), softmax model, one face per request,
8 wrk connections. Each server is loaded alone, in rotating order, round after round.

`shared_forward.py` times the pass in a tight loop; this measures it inside the servers,
where parsing each request's JSON runs between passes.

Needs wrk. Run: ``python benchmarks/served_forward.py [--rounds 6] [--seconds 8]
[--out benchmarks/results/served_forward.json]`` (about 3 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

SERVERS = ("bare", "gateway")


def counted_server(kind: str, model: str, db: str, port: int, out: str) -> None:
    """Serve as ``kind`` with the network's forward pass counted; the counts go to ``out``
    (JSON) when the server stops."""
    from mirisk.models.store import load_target

    network_class = type(load_target(model).module)
    original = network_class.forward
    counts = {"cpu_seconds": 0.0, "rows": 0, "passes": 0}

    def forward(self: Any, inputs: Any) -> Any:  # the network class's own forward, counted
        started = time.thread_time()
        try:
            return original(self, inputs)
        finally:
            counts["cpu_seconds"] += time.thread_time() - started
            counts["rows"] += len(inputs)
            counts["passes"] += 1

    network_class.forward = forward
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # uvicorn re-raises it after shutting down
    sys.path.insert(0, str(Path(__file__).parent))
    try:
        if kind == "bare":
            from gateway_overhead import bare_server
            bare_server(model, port)
        else:
            from gateway_ablation import ablated_server
            ablated_server(model, db, port, "full")
    finally:
        partial = f"{out}.partial"
        Path(partial).write_text(json.dumps(counts))
        os.replace(partial, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/served_forward.json"))
    parser.add_argument("--counted-server", nargs=5, metavar=("KIND", "MODEL", "DB", "PORT", "OUT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.counted_server:
        kind, model, db, port, out = args.counted_server
        counted_server(kind, model, db, int(port), out)
        return
    sys.path.insert(0, str(Path(__file__).parent))
    import gateway_overhead as bench
    from mirisk.runtime import versions

    work, key, model, bodies = bench.one_face_setup("mirisk-served-forward-")
    rounds = []
    for round_index in range(args.rounds):
        row = {}
        for kind in SERVERS[round_index % 2:] + SERVERS[:round_index % 2]:
            port, counts = bench.free_port(), work / f"{kind}-{round_index}.json"
            server = bench.launch([sys.executable, __file__, "--counted-server", kind, str(model),
                                   str(work / "gateway.db"), str(port), str(counts)], port)
            try:
                load = bench.finish_load(bench.start_load(server, port, bodies, args.seconds, 8, key))
            finally:
                server.terminate()
                server.wait()
            counted = json.loads(counts.read_text())
            row[kind] = {**load, "forward_cpu_us_per_row": 1e6 * counted["cpu_seconds"] / counted["rows"],
                         "rows_per_pass": counted["rows"] / counted["passes"]}
        rounds.append(row)
        print(f"round {round_index}: " + " | ".join(
            f"{kind} {row[kind]['forward_cpu_us_per_row']:.1f} us a row, {row[kind]['rows_per_pass']:.2f} rows a "
            f"pass, {row[kind]['requests_per_second']:.0f} req/s" for kind in SERVERS), flush=True)
    ratios = [row["gateway"]["forward_cpu_us_per_row"] / row["bare"]["forward_cpu_us_per_row"] for row in rounds]
    print(f"gateway against bare, forward CPU per row: median {statistics.median(ratios):.3f} "
          f"(rounds {', '.join(f'{r:.3f}' for r in ratios)})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "benchmark": "served_forward", "date": time.strftime("%Y-%m-%d"), "seconds": args.seconds,
        "model": "softmax", "inputs_per_request": 1, "connections": 8, "load": "wrk -t1, each server alone",
        "gateway": "as shipped, detector off (gateway_ablation.py variant full)",
        "counted": "thread CPU time of the network's forward call, from the server's start (the few passes "
                   "each makes while starting are counted too; the HTTP start-up probes never reach the model)",
        "rounds": rounds, "gateway_over_bare_per_row": ratios, "versions": versions()}, indent=2) + "\n")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
