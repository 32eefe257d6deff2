"""A real gateway for tests: `mirisk serve` in its own process on a random port."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from mirisk.gateway.database import connect
from mirisk.gateway.keys import create_key


@dataclass
class Server:
    process: subprocess.Popen
    url: str
    db: Path

    def new_key(self, **rules) -> tuple[str, str]:
        connection = connect(self.db)
        key, token = create_key(connection, **rules)
        connection.close()
        return key.id, token

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(model: Path, db: Path, *options: str) -> Server:
    """Start `mirisk serve` and wait until /healthz answers."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", "from mirisk.cli import app; app()", "serve", "--model", str(model), "--db", str(db),
         "--port", str(port), *options], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mirisk serve exited: {process.stdout.read().decode()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return Server(process, url, db)
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("mirisk serve did not come up in 90 s")
