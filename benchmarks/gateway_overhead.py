"""What the gateway's safeguards cost: throughput and p50/p99 latency of `mirisk serve`
(API key check, per-key output policy, atomic budget, durable audit log, probe detector,
metrics) against a bare FastAPI endpoint serving the same model with the same JSON
parsing, both under uvicorn (one process), loaded by wrk from a second process. With two
or more CPUs the server is pinned to one and wrk to another, so they do not take turns on
a core. Besides throughput and latency, it records the server's CPU time per request
(from /proc), which other tenants of a shared machine disturb far less than throughput.

The three servers are started once. In each round, each is loaded alone (throughput and
p50/p99 latency), then each gateway is loaded at the same time as the bare server, both on
the same core, each by its own wrk: the ratio of their CPU time per request (and of their
throughputs) is the overhead, measured in the same seconds on the same core, so a shared
machine's drifting speed cancels out. Medians over rounds are reported. Requests cycle through
40 different faces (benign traffic), one face or a batch per request.

Needs wrk (Debian package `wrk`). Run:
``python benchmarks/gateway_overhead.py [--seconds 6] [--rounds 5] [--out benchmarks/results/gateway_overhead.json]``
(about 12 minutes on 2 cores with the defaults).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from mirisk.data import load_faces
from mirisk.gateway.database import connect
from mirisk.gateway.keys import create_key
from mirisk.models.store import save_target
from mirisk.pipelines.faces import train_face_target
from mirisk.runtime import versions

LUA = """
local bodies = {}
local n = 0
init = function(args)
  for i = 0, tonumber(args[1]) - 1 do
    local f = io.open(args[2] .. "/body" .. i .. ".json", "rb")
    bodies[i] = f:read("*all"); f:close()
  end
  n = tonumber(args[1])
end
local i = 0
request = function()
  i = (i + 1) % n
  return wrk.format("POST", "/v1/predict", {["Content-Type"] = "application/json",
                    ["Authorization"] = "Bearer " .. os.getenv("MIRISK_BENCH_KEY")}, bodies[i])
end
"""


SERVERS = ("bare", "gateway", "gateway-no-detector")


def bare_server(model_dir: str, port: int) -> None:
    """The baseline: the same model and JSON handling, no safeguards."""
    import torch
    import uvicorn
    from threadpoolctl import threadpool_limits

    from mirisk.models.store import load_target
    from mirisk.runtime import prepare_torch

    prepare_torch()  # the runtime settings `mirisk serve` uses
    threadpool_limits(1, user_api="blas")
    target = load_target(model_dir)
    network = target.frozen_network()  # the copy the gateway serves (ServedModel)
    app = FastAPI()

    @app.post("/v1/predict")
    async def predict(request: Request) -> Response:
        batch = np.asarray(orjson.loads(await request.body())["inputs"], dtype=np.float32)
        with torch.inference_mode():
            outputs = torch.softmax(network(torch.from_numpy(batch.reshape(len(batch), *target.input_shape))), 1)
        return Response(orjson.dumps({"outputs": outputs.numpy()}, option=orjson.OPT_SERIALIZE_NUMPY),
                        media_type="application/json")

    gc.collect()
    gc.freeze()  # as `mirisk serve` does (mirisk.gateway.http_server.run_server)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cpu_sets() -> tuple[set[int] | None, set[int] | None]:
    """(the server's CPU, wrk's CPU) when there are two or more to pin to, else no pinning."""
    cpus = sorted(os.sched_getaffinity(0))
    return ({cpus[0]}, {cpus[1]}) if len(cpus) >= 2 else (None, None)


def pinned(cpus: set[int] | None) -> Callable[[], None] | None:
    """A pre-exec hook that keeps the child on ``cpus`` (None: no hook)."""
    return None if cpus is None else (lambda: os.sched_setaffinity(0, cpus))


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process and its threads so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def launch(command: list[str], port: int, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start a server on the server's CPU and wait until it answers on ``port``."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                               preexec_fn=pinned(cpu_sets()[0]), env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            httpx.post(f"http://127.0.0.1:{port}/v1/predict", content=b"{}", timeout=1)
            return process
        except httpx.HTTPError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"server did not start: {command}")


@dataclass
class Load:
    """wrk loading one server, and the server's CPU time when it began."""

    server: subprocess.Popen
    wrk: subprocess.Popen
    cpu_before: float


def start_load(server: subprocess.Popen, port: int, bodies: Path, seconds: int, connections: int, key: str) -> Load:
    cpu_before = cpu_seconds(server.pid)
    wrk = subprocess.Popen(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(bodies / "post.lua"),
         f"http://127.0.0.1:{port}", "--", str(len(list(bodies.glob("body*.json")))), str(bodies)],
        stdout=subprocess.PIPE, text=True, env={"MIRISK_BENCH_KEY": key, "PATH": "/usr/bin:/bin"},
        preexec_fn=pinned(cpu_sets()[1]))
    return Load(server, wrk, cpu_before)


def finish_load(load: Load) -> dict[str, float]:
    """Throughput, p50 and p99 latency, and the server's CPU time per request."""
    output = load.wrk.communicate()[0]
    cpu = cpu_seconds(load.server.pid) - load.cpu_before
    if load.wrk.returncode != 0 or "Non-2xx" in output:
        raise RuntimeError(f"wrk failed or saw errors:\n{output}")

    def millis(label: str) -> float:
        value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)\b", output).groups()
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    requests = int(re.search(r"(\d+) requests in", output).group(1))
    return {"requests_per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
            "p50_ms": millis("50%"), "p99_ms": millis("99%"), "server_cpu_ms_per_request": 1e3 * cpu / requests}


def write_bodies(images: np.ndarray, batch: int, folder: Path) -> Path:
    """40 request bodies of ``batch`` different faces each, and the wrk script that cycles them."""
    folder.mkdir()
    (folder / "post.lua").write_text(LUA)
    picks = np.random.default_rng(0).permutation(len(images))
    for i in range(40):
        chosen = images[picks[(i * batch + np.arange(batch)) % len(picks)]]
        (folder / f"body{i}.json").write_bytes(
            orjson.dumps({"inputs": chosen.reshape(batch, -1)}, option=orjson.OPT_SERIALIZE_NUMPY))
    return folder


def one_face_setup(prefix: str) -> tuple[Path, str, Path, Path]:
    """A work folder with a gateway database holding one benchmark key, the softmax model
    saved in it and 40 one-face request bodies: (folder, key, model, bodies)."""
    faces = load_faces(None)
    work = Path(tempfile.mkdtemp(prefix=prefix))
    connection = connect(work / "gateway.db")
    _, key = create_key(connection, label="benchmark", policy="scores", budget=10**12, window="1d")
    connection.close()
    model = save_target(train_face_target("softmax", faces), work / "softmax")
    return work, key, model, write_bodies(faces.images, 1, work / "bodies")


def server_command(name: str, model: Path, db: Path, port: int) -> list[str]:
    """``bare``, ``gateway`` (every safeguard, detector alerting) or ``gateway-no-detector``."""
    if name == "bare":
        return [sys.executable, __file__, "--bare-server", str(model), str(port)]
    detector = "off" if name == "gateway-no-detector" else "alert"
    return [sys.executable, "-c", "from mirisk.cli import app; app()", "serve", "--model", str(model), "--db", str(db),
            "--port", str(port), "--policy", "label", "--detector", detector]


def overhead(runs: list[tuple[dict[str, float], dict[str, float]]], metric: str) -> float:
    """Median over (gateway, bare) pairs of the gateway's relative cost in ``metric``."""
    if metric == "requests_per_second":
        return statistics.median(1 - gateway[metric] / bare[metric] for gateway, bare in runs)
    return statistics.median(gateway[metric] / bare[metric] - 1 for gateway, bare in runs)


def compare(model: Path, bodies: Path, db: Path, key: str, args: argparse.Namespace) -> dict:
    """The three servers, started once. Each round loads each server alone (throughput and
    latency), then each gateway side by side with the bare server (the overheads)."""
    alone: dict[str, list[dict[str, float]]] = {name: [] for name in SERVERS}
    paired: dict[str, list[tuple[dict[str, float], dict[str, float]]]] = {name: [] for name in SERVERS[1:]}
    servers: dict[str, tuple[subprocess.Popen, int]] = {}
    load = {"bodies": bodies, "seconds": args.seconds, "connections": args.connections, "key": key}
    try:
        for name in SERVERS:
            port = free_port()
            servers[name] = launch(server_command(name, model, db, port), port), port
            finish_load(start_load(*servers[name], **{**load, "seconds": 3}))  # warm-up
        for _ in range(args.rounds):
            for name in SERVERS:
                alone[name].append(finish_load(start_load(*servers[name], **load)))
            for name in SERVERS[1:]:
                gateway, bare = start_load(*servers[name], **load), start_load(*servers["bare"], **load)
                paired[name].append((finish_load(gateway), finish_load(bare)))
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait()
    summary = {name: {metric: statistics.median(r[metric] for r in runs) for metric in runs[0]}
               for name, runs in alone.items()}
    overheads = {f"{name}_{metric}_overhead": overhead(paired[name], metric)
                 for name in SERVERS[1:] for metric in ("requests_per_second", "server_cpu_ms_per_request")}
    return {**summary, **overheads, "alone": alone, "side_by_side": paired}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--batches", default="1,16")
    parser.add_argument("--models", default="softmax,cnn")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/gateway_overhead.json"))
    parser.add_argument("--bare-server", nargs=2, metavar=("MODEL", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server:
        bare_server(args.bare_server[0], int(args.bare_server[1]))
        return
    if shutil.which("wrk") is None:
        sys.exit("this benchmark needs wrk (apt-get install wrk)")
    faces = load_faces(None)
    work = Path(tempfile.mkdtemp(prefix="mirisk-gateway-bench-"))
    connection = connect(work / "gateway.db")
    _, key = create_key(connection, label="benchmark", policy="scores", budget=10**12, window="1d")
    connection.close()
    results = []
    for architecture in args.models.split(","):
        model = save_target(train_face_target(architecture, faces), work / architecture)
        for batch in (int(b) for b in args.batches.split(",")):
            bodies = write_bodies(faces.images, batch, work / f"{architecture}-batch{batch}")
            row = {"model": architecture, "inputs_per_request": batch,
                   **compare(model, bodies, work / "gateway.db", key, args)}
            results.append(row)
            print(f"{architecture}, {batch} per request, alone: " + " | ".join(
                f"{name} {row[name]['requests_per_second']:.0f} req/s, p50 {row[name]['p50_ms']:.1f} ms, "
                f"p99 {row[name]['p99_ms']:.1f} ms" for name in SERVERS) + "; side by side with bare: " + " | ".join(
                f"{name} throughput {-row[f'{name}_requests_per_second_overhead']:+.1%}, CPU per request "
                f"{row[f'{name}_server_cpu_ms_per_request_overhead']:+.1%}" for name in SERVERS[1:]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "benchmark": "gateway_overhead", "date": time.strftime("%Y-%m-%d"), "seconds": args.seconds,
        "rounds": args.rounds, "connections": args.connections, "data": "the bundled AT&T faces (112x92)",
        "gateway": "policy scores (per key), budget 1e12 per rolling day, detector alert, audit log", "load": "wrk -t1",
        "pinned": cpu_sets()[0] is not None,
        "results": results, "versions": versions()}, indent=2) + "\n")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
