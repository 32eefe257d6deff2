"""What the gateway's safeguards cost: throughput and p50/p99 latency of `mirisk serve`
(API key check, per-key output policy, atomic budget, durable audit log, probe detector,
metrics) against a bare FastAPI endpoint serving the same model with the same JSON
parsing, both under uvicorn (one process), loaded by wrk from a second process.

The servers are measured in turn (bare, gateway, gateway without the detector, bare, ...) and each
figure is the median over rounds, so machine noise hits both alike. Requests cycle through
40 different faces (benign traffic), one face or a batch per request.

Needs wrk (Debian package `wrk`). Run:
``python benchmarks/gateway_overhead.py [--seconds 15] [--rounds 3] [--out benchmarks/results/gateway_overhead.json]``
(about 12 minutes on 2 cores with the defaults).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
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

    from mirisk.models.store import load_target

    target = load_target(model_dir)
    network = target.module.eval().requires_grad_(False)
    app = FastAPI()

    @app.post("/v1/predict")
    async def predict(request: Request) -> Response:
        batch = np.asarray(orjson.loads(await request.body())["inputs"], dtype=np.float32)
        with torch.inference_mode():
            outputs = torch.softmax(network(torch.from_numpy(batch.reshape(len(batch), *target.input_shape))), 1)
        return Response(orjson.dumps({"outputs": outputs.numpy()}, option=orjson.OPT_SERIALIZE_NUMPY),
                        media_type="application/json")

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch(command: list[str], port: int) -> subprocess.Popen:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            httpx.post(f"http://127.0.0.1:{port}/v1/predict", content=b"{}", timeout=1)
            return process
        except httpx.HTTPError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"server did not start: {command}")


def run_wrk(port: int, bodies: Path, count: int, seconds: int, connections: int, key: str) -> dict[str, float]:
    script = bodies / "post.lua"
    output = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script),
         f"http://127.0.0.1:{port}", "--", str(count), str(bodies)],
        capture_output=True, text=True, check=True, env={"MIRISK_BENCH_KEY": key, "PATH": "/usr/bin:/bin"},
    ).stdout
    if "Non-2xx" in output:
        raise RuntimeError(f"wrk saw errors:\n{output}")

    def millis(label: str) -> float:
        value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)\b", output).groups()
        return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]

    return {"requests_per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
            "p50_ms": millis("50%"), "p99_ms": millis("99%")}


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


def server_command(name: str, model: Path, db: Path, port: int) -> list[str]:
    """``bare``, ``gateway`` (every safeguard, detector alerting) or ``gateway-no-detector``."""
    if name == "bare":
        return [sys.executable, __file__, "--bare-server", str(model), str(port)]
    detector = "off" if name == "gateway-no-detector" else "alert"
    return [sys.executable, "-c", "from mirisk.cli import app; app()", "serve", "--model", str(model), "--db", str(db),
            "--port", str(port), "--policy", "label", "--detector", detector]


def compare(model: Path, bodies: Path, db: Path, key: str, args: argparse.Namespace) -> dict:
    """The servers in turn, ``args.rounds`` times each; medians and the overheads."""
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in SERVERS}
    for _ in range(args.rounds):
        for name in rounds:
            port = free_port()
            process = launch(server_command(name, model, db, port), port)
            try:
                run_wrk(port, bodies, 40, 3, args.connections, key)  # warm-up
                rounds[name].append(run_wrk(port, bodies, 40, args.seconds, args.connections, key))
            finally:
                process.terminate()
                process.wait()
    summary = {name: {metric: statistics.median(r[metric] for r in runs) for metric in runs[0]}
               for name, runs in rounds.items()}
    overheads = {name: 1 - summary[name]["requests_per_second"] / summary["bare"]["requests_per_second"]
                 for name in SERVERS[1:]}
    return {**summary, "throughput_overhead": overheads["gateway"],
            "throughput_overhead_without_detector": overheads["gateway-no-detector"], "rounds": rounds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=3)
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
            print(f"{architecture}, {batch} per request: " + " | ".join(
                f"{name} {row[name]['requests_per_second']:.0f} req/s, p50 {row[name]['p50_ms']:.1f} ms, "
                f"p99 {row[name]['p99_ms']:.1f} ms" for name in SERVERS)
                + f" | throughput overhead {row['throughput_overhead']:.1%} "
                  f"({row['throughput_overhead_without_detector']:.1%} without the detector)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "benchmark": "gateway_overhead", "date": time.strftime("%Y-%m-%d"), "seconds": args.seconds,
        "rounds": args.rounds, "connections": args.connections, "data": "the bundled AT&T faces (112x92)",
        "gateway": "policy scores (per key), budget 1e12 per rolling day, detector alert, audit log", "load": "wrk -t2",
        "results": results, "versions": versions()}, indent=2) + "\n")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
