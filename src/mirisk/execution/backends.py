"""Execution backends: run a list of tasks (JSON documents) through a named task function
and gather the results, in order, into one list. A backend that runs ``in_process`` also
lets a caller run work directly on objects it holds (``with backend.threads(): ...``), so
nothing is serialised on the local path.

- ``LocalBackend``: in this process, one task after another.
- ``RayBackend``: one Ray task per item on a cluster (``address``: ``auto``, ``ray://...``,
  or None to start a private one-machine cluster). Each task reserves ``cpus_per_task``
  CPUs and runs torch with that many threads, so tasks never oversubscribe a node. A task
  whose worker dies is retried (``max_retries``); results are gathered by position, so a
  retried task appears once.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch

from mirisk.errors import MiriskError
from mirisk.execution.tasks import as_json, run_task, task_function

OnResult = Callable[[int, dict[str, Any]], None]


@runtime_checkable
class Backend(Protocol):
    name: str
    cpus_per_task: int | None  # None: torch's default threads (local only)
    in_process: bool  # tasks run in this process, so work may be done here on live objects

    def threads(self) -> contextlib.AbstractContextManager[None]:
        """While open, torch in this process uses the threads a task of this backend would."""

    def map(self, task: str, items: list[dict[str, Any]], on_result: OnResult | None = None) -> list[dict[str, Any]]:
        """The results of task ``task`` on each item, in the items' order; ``on_result(index,
        result)`` as each one arrives."""


@dataclass
class LocalBackend:
    """Every task in this process, in order, with ``cpus_per_task`` torch threads (None:
    torch's default)."""

    cpus_per_task: int | None = None
    name: str = "local"
    in_process: bool = True

    @contextlib.contextmanager
    def threads(self) -> Iterator[None]:
        previous = torch.get_num_threads()
        torch.set_num_threads(self.cpus_per_task or previous)
        try:
            yield
        finally:
            torch.set_num_threads(previous)

    def map(self, task: str, items: list[dict[str, Any]], on_result: OnResult | None = None) -> list[dict[str, Any]]:
        results = []
        with self.threads():
            for index, item in enumerate(items):
                results.append(json.loads(run_task(task, as_json(item, f"a {task} task"), torch.get_num_threads())))
                if on_result is not None:
                    on_result(index, results[-1])
        return results


@dataclass
class RayBackend:
    """Tasks on a Ray cluster (Ray Core), each reserving ``cpus_per_task`` CPUs."""

    address: str | None = None
    cpus_per_task: int = 1
    max_retries: int = 3
    name: str = "ray"
    in_process: bool = False

    def threads(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def __post_init__(self) -> None:
        if self.cpus_per_task < 1 or self.max_retries < 0:
            raise MiriskError("a Ray task needs at least 1 CPU, and retries must be >= 0")
        try:
            import ray
        except ImportError:
            raise MiriskError("the Ray backend needs Ray: pip install 'mirisk[ray]'") from None
        if self.address not in (None, "auto"):
            self._check_reachable(self.address)
        if ray.is_initialized() and self.address not in (None, "auto") and not self._joined(ray, self.address):
            ray.shutdown()  # this process is on another cluster
        if not ray.is_initialized():
            try:
                ray.init(address=self.address, include_dashboard=False, log_to_driver=False,
                         configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as error:
                raise MiriskError(f"cannot join the Ray cluster at {self.address or 'a new local one'}: "
                                  f"{str(error).splitlines()[0]}") from None

    @staticmethod
    def _check_reachable(address: str) -> None:
        """Fail in one line, at once, where Ray itself would retry an unreachable head for minutes."""
        host, _, port = address.removeprefix("ray://").rpartition(":")
        if not host or not port.isdigit():
            raise MiriskError(f"--address must be auto, HOST:PORT or ray://HOST:PORT, got {address!r}")
        try:
            socket.create_connection((host, int(port)), timeout=5).close()
        except OSError as error:
            raise MiriskError(f"cannot join the Ray cluster at {address}: {error.strerror or error}") from None

    @staticmethod
    def _joined(ray: Any, address: str) -> bool:
        return ray.get_runtime_context().gcs_address == address.removeprefix("ray://")

    def map(self, task: str, items: list[dict[str, Any]], on_result: OnResult | None = None) -> list[dict[str, Any]]:
        import ray

        task_function(task)  # an unknown task fails here, not on a worker
        remote = ray.remote(num_cpus=self.cpus_per_task, max_retries=self.max_retries)(run_task)
        references = [remote.remote(task, as_json(item, f"a {task} task"), self.cpus_per_task) for item in items]
        position = {reference: index for index, reference in enumerate(references)}
        results: list[dict[str, Any] | None] = [None] * len(references)
        pending = list(references)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            index = position[ready[0]]
            try:
                results[index] = json.loads(ray.get(ready[0]))
            except ray.exceptions.RayTaskError as error:
                if isinstance(error.cause, MiriskError):
                    raise error.cause from None
                raise MiriskError(f"a {task} task failed on the cluster: {str(error).splitlines()[0]}") from None
            if on_result is not None:
                on_result(index, results[index])  # type: ignore[arg-type]
        return results  # type: ignore[return-value]


def make_backend(name: str, address: str | None = None, cpus_per_task: int | None = None) -> LocalBackend | RayBackend:
    """``local`` or ``ray`` (with ``address``), from the command line's options."""
    if cpus_per_task is not None and cpus_per_task < 1:
        raise MiriskError(f"--cpus-per-task must be at least 1, got {cpus_per_task}")
    if name == "local":
        if address is not None:
            raise MiriskError("--address is for --backend ray")
        return LocalBackend(cpus_per_task)
    if name == "ray":
        return RayBackend(address, cpus_per_task or 1)
    raise MiriskError(f"unknown backend {name!r}; use local or ray")
