"""`mirisk serve` (the gateway) and `mirisk keys create|revoke|list` (its API keys)."""

from __future__ import annotations

import json
from contextlib import closing
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from threadpoolctl import threadpool_limits

from mirisk.cli.common import app, console, friendly_errors, with_import_options
from mirisk.data.faces import load_faces
from mirisk.errors import MiriskError
from mirisk.gateway.database import backup, connect
from mirisk.gateway.detector import DetectorSettings, calibrate
from mirisk.gateway.keys import ApiKey, create_key, format_window, list_keys, revoke_key
from mirisk.models.imported import ImportSpec
from mirisk.models.loading import load_image_target
from mirisk.models.target import TargetModel
from mirisk.runtime import prepare_torch
from mirisk.validation import check_number

MAX_BODY_MB = 1024.0  # a request body larger than 1 GiB is refused at start-up, not parsed

keys_app = typer.Typer(no_args_is_help=True, help="Create, revoke, list and back up the gateway's API keys.")
app.add_typer(keys_app, name="keys")
DatabaseOption = Annotated[Path, typer.Option("--db", help="The gateway's SQLite file (keys, budgets, audit log).")]


class DetectorAction(str, Enum):
    off = "off"
    alert = "alert"
    throttle = "throttle"
    block = "block"


def detector_settings(action: DetectorAction, target: TargetModel, calibration_data: str | None,
                      false_positive_rate: float) -> DetectorSettings | None:
    """Calibrate the probe detector on benign inputs: ``calibration_data``, or else the data
    the model was trained on, as its metadata records."""
    if action is DetectorAction.off:
        return None
    source = calibration_data or target.data.get("source")
    if source is None:
        raise MiriskError("the probe detector needs benign inputs to calibrate on: give --calibration-data (the "
                          "model's metadata names no training data)")
    benign = load_faces(source)
    if tuple(benign.images.shape[1:]) != tuple(target.input_shape):
        raise MiriskError(f"calibration data {source} holds {benign.images.shape[1:]} images; the model takes "
                          f"{tuple(target.input_shape)}")
    return calibrate(benign.images, false_positive_rate, action=action.value)


@app.command("serve")
@friendly_errors
@with_import_options
def serve(
    model: Annotated[Path, typer.Option(help="Model folder written by `mirisk train`, or a model file.")],
    db: DatabaseOption,
    policy: Annotated[str, typer.Option(help="Output policy for keys without their own (scores, topk:K, round:D, "
                                             "label, ...).")] = "label",
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    max_batch: Annotated[int, typer.Option(help="Most inputs in one request.")] = 64,
    max_body_mb: Annotated[float, typer.Option(help="Largest request body, in MiB.")] = 16.0,
    detector: Annotated[DetectorAction, typer.Option(help="Probe detector: what to do to a key whose queries "
                                                          "look like an inversion search.")] = DetectorAction.alert,
    calibration_data: Annotated[str | None, typer.Option(help="Benign inputs to calibrate the detector on "
                                                              "(default: the model's training data).")] = None,
    detector_fpr: Annotated[float, typer.Option(help="Share of benign inputs the detector may call probe-like.")]
    = 0.01,
    header_timeout: Annotated[float, typer.Option(help="Seconds a client has to send a request's line and "
                                                       "headers.")] = 10.0,
    body_timeout: Annotated[float, typer.Option(help="Seconds a client has to send a request's body (408 "
                                                     "after).")] = 30.0,
    max_connections: Annotated[int, typer.Option(help="Most open connections and running requests (503 "
                                                      "past it).")] = 256,
    spec: ImportSpec | None = None,
) -> None:
    """Serve a model behind API keys, output policies, query budgets, an audit log and a
    probe detector (FastAPI; OpenAPI docs at /docs)."""

    from mirisk.gateway.app import create_app
    from mirisk.gateway.http_server import ServerLimits, run_server, server_config
    from mirisk.gateway.service import Gateway, GatewaySettings

    prepare_torch()
    # The detector's matrix products are small: BLAS worker threads would only spin on the
    # cores the server and its clients need.
    threadpool_limits(1, user_api="blas")
    if max_batch < 1:
        raise MiriskError("--max-batch must be >= 1")
    check_number("--max-body-mb", max_body_mb, 0, MAX_BODY_MB, low_open=True)
    if not 1 <= port <= 65535:
        raise MiriskError(f"--port must be between 1 and 65535, got {port}")
    limits = ServerLimits(header_timeout=header_timeout, body_timeout=body_timeout, max_connections=max_connections)
    target = load_image_target(model, spec)
    settings = GatewaySettings(policy=policy, max_batch=max_batch, max_body_bytes=int(max_body_mb * 2**20),
                               detector=detector_settings(detector, target, calibration_data, detector_fpr))
    gateway = Gateway(target, db, settings)
    watch = "off" if settings.detector is None else (
        f"{settings.detector.action} (benign band [{settings.detector.low:.3f}, {settings.detector.high:.3f}])")
    console.print(f"serving {target.architecture} ({target.n_classes} classes) on http://{host}:{port} - default "
                  f"policy {gateway.settings.policy}, database {db}, probe detector {watch}", highlight=False)
    run_server(server_config(create_app(gateway), host, port, limits))


def _budget_text(key: ApiKey) -> str:
    if key.budget is None:
        return "unlimited"
    per = f" per {format_window(key.window_seconds)}" if key.window_seconds else " in all"
    cap = f", {key.total_budget:,} in all" if key.total_budget else ""
    return f"{key.budget:,}{per}{cap}"


@keys_app.command("create")
@friendly_errors
def keys_create(
    db: DatabaseOption,
    budget: Annotated[int | None, typer.Option(help="Queries the key may spend (per --window, else in all).")] = None,
    window: Annotated[str | None, typer.Option(help="Budget period: 90s, 15m, 12h, 1d.")] = None,
    total_budget: Annotated[int | None, typer.Option(help="A lifetime cap on top of a windowed budget.")] = None,
    rate_limit: Annotated[int | None, typer.Option(help="Most answered requests per minute.")] = None,
    policy: Annotated[str | None, typer.Option(help="This key's output policy (default: the server's).")] = None,
    label: Annotated[str, typer.Option(help="Who the key is for (shown in lists, never secret).")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print {\"id\": ..., \"key\": ...} as JSON.")] = False,
) -> None:
    """Create an API key; its secret is printed once and stored only hashed."""
    with closing(connect(db)) as connection:
        key, token = create_key(connection, label, policy, budget, window, total_budget, rate_limit)
    if as_json:
        print(json.dumps({"id": key.id, "key": token}))
        return
    console.print(f"created key {key.id} (policy {key.policy or 'server default'}, budget {_budget_text(key)})",
                  highlight=False)
    console.print(f"key (shown once, stored only hashed): {token}", highlight=False, soft_wrap=True)


@keys_app.command("revoke")
@friendly_errors
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id (from `mirisk keys list`).")],
                db: DatabaseOption) -> None:
    """Revoke a key: the gateway refuses it from the next request on; its log is kept."""
    with closing(connect(db, create=False)) as connection:
        revoke_key(connection, key_id)
    console.print(f"revoked key {key_id}")


@keys_app.command("list")
@friendly_errors
def keys_list(db: DatabaseOption,
              as_json: Annotated[bool, typer.Option("--json", help="Print the keys as JSON.")] = False) -> None:
    """List keys with their rules, use and state (never their secrets)."""
    with closing(connect(db, create=False)) as connection:
        keys = list_keys(connection)
    if as_json:
        print(json.dumps([key.as_dict() for key in keys]))
        return
    table = Table(title=f"API keys in {db}")
    for column in ("id", "label", "policy", "budget", "used", "rate/min", "state"):
        table.add_column(column)
    for key in keys:
        state = "revoked" if key.revoked else (f"flagged ({key.flag_action})" if key.flagged else "active")
        table.add_row(key.id, key.label, key.policy or "default", _budget_text(key), f"{key.queries_used:,}",
                      str(key.rate_per_minute or "-"), state)
    console.print(table)


@keys_app.command("backup")
@friendly_errors
def keys_backup(db: DatabaseOption,
                out: Annotated[Path, typer.Option(help="The new file for the copy (never overwritten).")]) -> None:
    """Copy the live database (keys, budgets, audit log) to a new owner-only file; safe
    while servers run."""
    backup(db, out)
    console.print(f"backed up {db} to {out} (owner-only)", highlight=False)
