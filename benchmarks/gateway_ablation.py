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

Needs wrk. Run: ``python benchmarks/gateway_ablation.py [--variants full,no-group,...]
[--rounds 3] [--seconds 6]`` (about 40 s per variant on 2 cores).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
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
    parser.add_argument("--ablated-server", nargs=4, metavar=("MODEL", "DB", "PORT", "VARIANT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ablated_server:
        model, db, port, variant = args.ablated_server
        ablated_server(model, db, int(port), variant)
        return
    sys.path.insert(0, str(Path(__file__).parent))
    import gateway_overhead as bench

    work, key, model, bodies = bench.one_face_setup("mirisk-gateway-ablation-")
    load = {"bodies": bodies, "connections": 8, "key": key}
    for variant in args.variants.split(","):
        if not set(variant.split("+")) <= set(VARIANTS):
            sys.exit(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
        bare_port, gateway_port = bench.free_port(), bench.free_port()
        servers = {"bare": (bench.launch(bench.server_command("bare", model, work / "gateway.db", bare_port),
                                         bare_port), bare_port),
                   "gateway": (bench.launch([sys.executable, __file__, "--ablated-server", str(model),
                                             str(work / "gateway.db"), str(gateway_port), variant], gateway_port),
                               gateway_port)}
        try:
            for server in servers.values():
                bench.finish_load(bench.start_load(*server, seconds=2, **load))  # warm-up
            pairs = []
            for _ in range(args.rounds):
                gateway = bench.start_load(*servers["gateway"], seconds=args.seconds, **load)
                bare = bench.start_load(*servers["bare"], seconds=args.seconds, **load)
                pairs.append((bench.finish_load(gateway), bench.finish_load(bare)))
        finally:
            for process, _ in servers.values():
                process.terminate()
                process.wait()
        cpu = [g["server_cpu_ms_per_request"] / b["server_cpu_ms_per_request"] - 1 for g, b in pairs]
        print(f"{variant:30s} CPU per request {statistics.median(cpu):+.1%} (rounds: "
              f"{', '.join(f'{c:+.1%}' for c in cpu)}), throughput "
              f"{-bench.overhead(pairs, 'requests_per_second'):+.1%}", flush=True)


if __name__ == "__main__":
    main()
