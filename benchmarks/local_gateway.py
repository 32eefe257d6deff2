"""A `mirisk serve` on loopback for the gateway benchmarks: a softmax face model trained for
it, keys, and a server that answers /healthz. Commands run as ``from mirisk.cli import
app; app()``, so a worktree of older code on PYTHONPATH runs through the same script."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

MIRISK = [sys.executable, "-c", "from mirisk.cli import app; app()"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def softmax_model(root: Path) -> Path:
    """A softmax face recogniser on the bundled faces, trained for the benchmark."""
    subprocess.run([*MIRISK, "train", "faces", "--model", "softmax", "--out", str(root / "model")], check=True,
                   capture_output=True)
    return root / "model"


def new_keys(database: Path, count: int) -> list[str]:
    """``count`` new keys without rules, as their clear text."""
    return [json.loads(subprocess.run([*MIRISK, "keys", "create", "--db", str(database), "--json"], check=True,
                                      capture_output=True, text=True).stdout)["key"] for _ in range(count)]


def start_gateway(model: Path, database: Path) -> tuple[subprocess.Popen, str]:
    """`mirisk serve` (detector off) and its URL, once /healthz answers."""
    port = free_port()
    server = subprocess.Popen([*MIRISK, "serve", "--model", str(model), "--db", str(database), "--port", str(port),
                               "--detector", "off"], stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return server, url
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("mirisk serve did not answer /healthz within a minute")
