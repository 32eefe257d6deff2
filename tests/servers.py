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


def _kill_matching(*fragments: str) -> int:
    """SIGKILL every process whose command line holds all ``fragments``; how many."""
    killed = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if all(fragment in command for fragment in fragments):
                os.kill(int(entry.name), signal.SIGKILL)
                killed += 1
        except (OSError, ProcessLookupError):
            continue
    return killed


@dataclass
class RayCluster:
    """A two-node Ray cluster on this machine: a head and one worker node, one CPU each,
    all of whose processes name its own temporary folder."""

    address: str
    worker_node_port: int
    temp_dir: Path

    def kill_worker_node(self) -> int:
        """SIGKILL the worker node's raylet (its workers die with it); how many processes died."""
        return _kill_matching("raylet", f"--node_manager_port={self.worker_node_port}")

    def stop(self) -> None:
        """Kill this cluster's processes only (never another Ray cluster on the machine)."""
        _kill_matching(str(self.temp_dir))


def ray_command() -> str:
    return str(Path(sys.executable).parent / "ray")


def start_ray_cluster(temp_dir: Path) -> RayCluster:
    """`ray start --head`, then `ray start --address` for a worker node, both on 127.0.0.1."""
    head_port, worker_node_port = free_port(), free_port()
    common = ["--num-cpus", "1", "--disable-usage-stats"]
    for command in (
        ["start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(head_port), "--include-dashboard=false",
         "--temp-dir", str(temp_dir), *common],
        ["start", "--address", f"127.0.0.1:{head_port}", "--node-ip-address", "127.0.0.1", "--node-manager-port",
         str(worker_node_port), *common],
    ):
        started = subprocess.run([ray_command(), *command], capture_output=True, text=True)
        if started.returncode != 0:
            raise RuntimeError(f"ray {' '.join(command[:2])} failed:\n{started.stderr[-2000:]}")
    return RayCluster(f"127.0.0.1:{head_port}", worker_node_port, temp_dir)
