"""Real servers for tests: `mirisk serve` in its own process on a random port, and a
two-node Ray cluster on this machine."""

from __future__ import annotations

import os
import signal
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


@dataclass
class RayCluster:
    """A two-node Ray cluster on this machine: a head and one worker node, one CPU each."""

    address: str
    worker_node_port: int

    def kill_worker_node(self) -> int:
        """SIGKILL the worker node's raylet and the workers it started; how many processes died."""
        killed = 0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if "raylet" in command and f"--node_manager_port={self.worker_node_port}" in command:
                os.kill(int(entry.name), signal.SIGKILL)
                killed += 1
        return killed

    def stop(self) -> None:
        subprocess.run([ray_command(), "stop", "--force"], capture_output=True, check=False)


def ray_command() -> str:
    return str(Path(sys.executable).parent / "ray")


def start_ray_cluster(temp_dir: Path) -> RayCluster:
    """`ray start --head`, then `ray start --address` for a worker node, both on 127.0.0.1."""
    head_port, worker_node_port = free_port(), free_port()
    common = ["--num-cpus", "1", "--disable-usage-stats"]
    subprocess.run([ray_command(), "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(head_port),
                    "--include-dashboard=false", "--temp-dir", str(temp_dir), *common],
                   check=True, capture_output=True)
    subprocess.run([ray_command(), "start", "--address", f"127.0.0.1:{head_port}", "--node-ip-address", "127.0.0.1",
                    "--node-manager-port", str(worker_node_port), *common], check=True, capture_output=True)
    return RayCluster(f"127.0.0.1:{head_port}", worker_node_port)
