"""Where the gateway's overhead goes: the gateway (detector off) with one part replaced by
a no-op or an older variant, loaded side by side with the bare server on one core as in
`gateway_overhead.py`, softmax model, one face per request.

Variants (comma-separated, combine with +):
- ``full``: the gateway as shipped;
- ``no-digest``: no digest of the inputs;
- ``no-input-checks``: JSON decoding only, no size, numbers-only, shape, range or NaN checks;
- ``no-body-checks``: no size and numbers-only scans of the body's bytes (the rest checked);
- ``no-deadlines``: uvicorn's own h11 protocol, without the head and body deadlines;
- ``no-rate-headers``: no RateLimit and Retry-After fields on answers;
- ``no-histogram``: no latency histogram;
- ``no-decision``: no SQLite decision at all (nothing logged, nothing spent);
- ``lone-forward``: each request answered in a forward pass of its own (the group still
  shares one commit), as before the model's passes were shared;
- ``one-turn``: group commit within one turn of the event loop instead of two;
- ``no-group``: one forward pass and one transaction per request;
- ``shell``: every safeguard removed (the request handled as the bare server does, inside
  the gateway's app and process): what the serving shell itself costs.
Every variant but ``full`` breaks a guarantee; they exist only to price each part.

With ``--alone`` every variant and the bare server are loaded one at a time instead, in
rotating order round after round, so that the machine's drift reaches each alike; each
round's ratio is taken against the bare server's run in the same round, and the median
over rounds comes with a distribution-free 95% interval (order statistics).

Needs wrk. Run: ``python benchmarks/gateway_ablation.py [--variants full,no-group,...]
[--rounds 3] [--seconds 6] [--alone [--out FILE]]`` (about 40 s per variant on 2 cores).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

VARIANTS = ("full", "no-digest", "no-input-checks", "no-body-checks", "no-deadlines", "no-rate-headers", "no-histogram", "no-decision", "lone-forward", "one-turn", "no-group", "shell")


def ablated_server(model_dir: str, db: str, port: int, variant: str) -> None:
    """`mirisk serve --detector off --policy label` (its server limits too) with the parts in
    ``variant`` changed."""
    import numpy as np
    import orjson
    import torch
    from threadpoolctl import threadpool_limits

    from mirisk.gateway import group_commit, inputs, service
    from mirisk.gateway.app import create_app
    from mirisk.gateway.http_server import ServerLimits, run_server, server_config
    from mirisk.gateway.ledger import Decision, settle_all
    from mirisk.models.store import load_target
    from mirisk.runtime import prepare_torch

    parts = set(variant.split("+"))
    if "no-digest" in parts:
        service.input_digests = lambda batch, algorithm: ["0" * 64] * len(batch)
    if "no-input-checks" in parts:
        service.parse_inputs = lambda body, contract: np.asarray(
            orjson.loads(body)["inputs"], dtype=np.float32).reshape(-1, *contract.input_shape)
    if "no-body-checks" in parts:
        inputs.check_size = lambda body, contract: None
        inputs.check_only_numbers = lambda body: None
    if "no-rate-headers" in parts:
        service.rate_headers = lambda decision: {}

    def no_decision(self, items):
        return [Decision("answered", 200, queries_left=None, request_id=0) for _ in items]

    def one_turn(self, item):
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._waiting.append((item, future))
        if len(self._waiting) == 1:
            loop.call_soon(self._commit)
        return future

    def no_group(self, item):
        future = asyncio.get_running_loop().create_future()
        (answered,) = self._answered([item])
        future.set_result((settle_all(self._connection(), [answered], self._throttled_per_minute)[0], answered))
        return future

    if "no-decision" in parts:
        group_commit.GroupCommitter._settle = no_decision
    for part, join in (("one-turn", one_turn), ("no-group", no_group)):
        if part in parts:
            group_commit.GroupCommitter._join = join

    networks = {}  # the bare server's copy of the network, made once

    async def shell(self, incoming):
        body = await incoming.read_body()
        batch = np.asarray(orjson.loads(body)["inputs"], dtype=np.float32).reshape(-1, *self.contract.input_shape)
        if "shell" not in networks:
            networks["shell"] = self.model.target.frozen_network()
        with torch.inference_mode():
            outputs = torch.softmax(networks["shell"](torch.from_numpy(batch)), 1)
        return service.Reply(200, {"outputs": outputs.numpy()})

    if "shell" in parts:
        service.Gateway.predict = shell
    prepare_torch()
    threadpool_limits(1, user_api="blas")
    gateway = service.Gateway(load_target(model_dir), Path(db), service.GatewaySettings(policy="label"))
    if "no-histogram" in parts:
        gateway.metrics.latency.observe = lambda seconds: None
    if "lone-forward" in parts:
        answer_group = gateway._committer._answer
        gateway._committer._answer = lambda pending: [answer_group([request])[0] for request in pending]
    config = server_config(create_app(gateway), "127.0.0.1", port, ServerLimits())
    if "no-deadlines" in parts:
        config.http = "h11"
    run_server(config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--alone", action="store_true", help="load each server alone, in rotating order")
    parser.add_argument("--out", type=Path, help="with --alone: write every round's runs and the medians here (JSON)")
    parser.add_argument("--ablated-server", nargs=4, metavar=("MODEL", "DB", "PORT", "VARIANT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ablated_server:
        model, db, port, variant = args.ablated_server
        ablated_server(model, db, int(port), variant)
        return
    if args.out is not None and not args.alone:
        sys.exit("--out saves an --alone run; add --alone")
    sys.path.insert(0, str(Path(__file__).parent))
    import gateway_overhead as bench

    work, key, model, bodies = bench.one_face_setup("mirisk-gateway-ablation-")
    load = {"bodies": bodies, "connections": 8, "key": key}
    variants = args.variants.split(",")
    for variant in variants:
        if not set(variant.split("+")) <= set(VARIANTS):
            sys.exit(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")

    def launch(variant: str) -> tuple[subprocess.Popen, int]:
        port = bench.free_port()
        command = (bench.server_command("bare", model, work / "gateway.db", port) if variant == "bare" else
                   [sys.executable, __file__, "--ablated-server", str(model), str(work / "gateway.db"), str(port),
                    variant])
        return bench.launch(command, port), port

    if args.alone:
        results = alone(launch, variants, load, args.rounds, args.seconds)
        if args.out is not None:
            from mirisk.runtime import versions

            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps({
                "benchmark": "gateway_ablation --alone", "date": time.strftime("%Y-%m-%d"), "rounds": args.rounds,
                "seconds": args.seconds, "connections": load["connections"], "model": "softmax",
                "inputs_per_request": 1, "load": "wrk -t1, each server alone, rotating order", **results,
                "versions": versions()}, indent=2) + "\n")
    else:
        for variant in variants:
            side_by_side(launch, variant, load, args.rounds, args.seconds)


def side_by_side(launch: Callable[[str], tuple[subprocess.Popen, int]], variant: str, load: dict, rounds: int,
                 seconds: int) -> None:
    """``variant`` and the bare server loaded at once on one core, ``rounds`` times."""
    import gateway_overhead as bench

    servers = {"bare": launch("bare"), "gateway": launch(variant)}
    try:
        for server in servers.values():
            bench.finish_load(bench.start_load(*server, seconds=2, **load))  # warm-up
        pairs = []
        for _ in range(rounds):
            gateway = bench.start_load(*servers["gateway"], seconds=seconds, **load)
            bare = bench.start_load(*servers["bare"], seconds=seconds, **load)
            pairs.append((bench.finish_load(gateway), bench.finish_load(bare)))
    finally:
        stop(servers)
    cpu = [g["server_cpu_ms_per_request"] / b["server_cpu_ms_per_request"] - 1 for g, b in pairs]
    print(f"{variant:30s} CPU per request {statistics.median(cpu):+.1%} (rounds: "
          f"{', '.join(f'{c:+.1%}' for c in cpu)}), throughput "
          f"{-bench.overhead(pairs, 'requests_per_second'):+.1%}", flush=True)


def alone(launch: Callable[[str], tuple[subprocess.Popen, int]], variants: list[str], load: dict, rounds: int,
          seconds: int) -> dict:
    """Each variant and the bare server loaded alone, in rotating order, ``rounds`` times:
    every run, and each variant's median ratios to the bare server with 95% intervals."""
    import gateway_overhead as bench

    names = ["bare", *variants]
    servers = {name: launch(name) for name in dict.fromkeys(names)}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
    try:
        for server in servers.values():
            bench.finish_load(bench.start_load(*server, seconds=2, **load))  # warm-up
        order = list(servers)
        for round_index in range(rounds):
            shift = round_index % len(order)
            for name in order[shift:] + order[:shift]:
                runs[name].append(bench.finish_load(bench.start_load(*servers[name], seconds=seconds, **load)))
    finally:
        stop(servers)
    print(f"bare alone: median {statistics.median(r['requests_per_second'] for r in runs['bare']):.0f} req/s "
          f"(rounds {min(r['requests_per_second'] for r in runs['bare']):.0f}-"
          f"{max(r['requests_per_second'] for r in runs['bare']):.0f})")
    medians: dict[str, dict[str, dict[str, float]]] = {}
    for name in servers:
        if name == "bare":
            continue
        parts, medians[name] = [], {}
        for metric, label in (("requests_per_second", "throughput"), ("server_cpu_ms_per_request", "CPU"),
                              ("p50_ms", "p50"), ("p99_ms", "p99")):
            ratios = [run[metric] / bare[metric] - 1 for run, bare in zip(runs[name], runs["bare"], strict=True)]
            low, high = median_interval(ratios)
            medians[name][metric] = {"median_change": statistics.median(ratios), "low": low, "high": high}
            parts.append(f"{label} {statistics.median(ratios):+.1%} [{low:+.1%}, {high:+.1%}]")
        print(f"{name:30s} " + ", ".join(parts), flush=True)
    return {"runs": runs, "against_bare": medians}


def median_interval(values: list[float], confidence: float = 0.95) -> tuple[float, float]:
    """A distribution-free interval for the median: the order statistics that cover it with at
    least ``confidence`` (the whole range when there are too few values)."""
    from scipy.stats import binom

    ordered, n, alpha = sorted(values), len(values), 1 - confidence
    k = 0  # the interval is the k-th smallest to the k-th largest: P(Binomial(n, 1/2) < k) <= alpha / 2
    while binom.cdf(k, n, 0.5) <= alpha / 2:
        k += 1
    return (ordered[k - 1], ordered[n - k]) if k >= 1 else (ordered[0], ordered[-1])


def stop(servers: dict[str, tuple[subprocess.Popen, int]]) -> None:
    for process, _ in servers.values():
        process.terminate()
        process.wait()

if __name__ == "__main__":
    main()
