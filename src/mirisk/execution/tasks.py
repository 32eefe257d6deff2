"""The task functions a backend may run, by name. A task's input and its result are JSON
documents: nothing a user handed in crosses to a worker as a pickle, and a worker imports
only these functions (never a name sent to it)."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from mirisk.errors import MiriskError
from mirisk.runtime import prepare_torch

TASKS = {
    "face-sweep-point": "mirisk.pipelines.face_sweep:sweep_point",
    "audit-unit": "mirisk.audit.runner:run_unit_task",
}


def portable_path(value: str | Path | None) -> str | None:
    """An absolute path, so a worker with another working folder finds the same file;
    ``bundled:...`` names and None unchanged."""
    if value is None or str(value).startswith("bundled:"):
        return None if value is None else str(value)
    return str(Path(value).resolve())


def task_function(name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    if name not in TASKS:
        raise MiriskError(f"unknown task {name!r}; the tasks are {', '.join(TASKS)}")
    module, function = TASKS[name].split(":")
    return getattr(importlib.import_module(module), function)


def as_json(payload: dict[str, Any], what: str) -> str:
    """``payload`` as JSON text, or a one-line error naming what could not be serialised."""
    try:
        return json.dumps(payload, allow_nan=True)
    except (TypeError, ValueError) as error:
        raise MiriskError(f"{what} is not a JSON document ({error}); tasks carry only JSON") from None


def run_task(name: str, task: str, threads: int) -> str:
    """Run task ``name`` on the JSON document ``task`` with ``threads`` torch threads; JSON out."""
    torch.set_num_threads(threads)
    prepare_torch()
    return as_json(task_function(name)(json.loads(task)), f"the result of task {name}")
