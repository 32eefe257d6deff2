"""`mirisk audit`, `mirisk report` and the default demo (an audit of a face recogniser,
with the attacks in the shipped face prior's latent space)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from mirisk.artifacts import prepare_output_dir
from mirisk.audit import AuditReport, plan_audit, plan_for_subject, rerender, run_audit
from mirisk.audit.kinds import case_for
from mirisk.audit.plan import AttackUnit
from mirisk.audit.verdict import LEVELS, level_index
from mirisk.cli.common import (
    AddressOption, ApiKeyOption, BackendName, BackendOption, CpusOption, app, console, demo_app, errors,
    friendly_errors, progress_bar, with_import_options,
)
from mirisk.execution.backends import Backend, make_backend
from mirisk.models.imported import ImportSpec
from mirisk.data.faces import BUNDLED_PRIVATE, load_faces
from mirisk.errors import MiriskError
from mirisk.models.store import save_target
from mirisk.pipelines.faces import default_training, train_face_target

LEVEL_STYLE = {"low": "green", "elevated": "yellow", "high": "red", "critical": "bold white on red"}
DEMO_ARCHITECTURE = "cnn"
# The demo's audit, cut to a few minutes on 2 cores (BENCHMARKS.md, "`make demo`"): a seeded
# sample of 10 of the 20 people, fewer steps than `mirisk audit`'s defaults, one DP-SGD
# retrain and one extra output policy. Each attack still runs on the label-permuted twin.
DEMO_CONFIG: dict[str, Any] = {
    "access": "white-box,scores,label-only", "people": 10, "miface_iterations": 200, "blackbox_iterations": 40,
    "labelonly_iterations": 30, "generative_iterations": 30, "generative_scores_iterations": 25,
    "generative_labelonly_iterations": 30, "epsilons": [50.0], "policies": ["round:1"],
}


@app.command()
@friendly_errors
@with_import_options
def audit(
    model: Annotated[Path, typer.Option(help="Model folder (mirisk image, tabular or segmentation model, or a federated round's "
                                             "server record), or an image model file "
                                             "(TorchScript, .pt2, ONNX, skops, safetensors).")],
    out: Annotated[Path, typer.Option(help="Folder for report.json, report.html and the evidence; an unfinished "
                                           "audit there is resumed.")],
    data: Annotated[str | None, typer.Option(help="Photos folder (image model; for a federated round, stand-in "
                                                  "client photos, required), CSV (tabular model) or NIfTI or DICOM "
                                                  "scans folder (segmentation model); default: the data the model "
                                                  "records.")] = None,
    config: Annotated[Path | None, typer.Option(help="TOML file with the plan's settings (see docs/audit.md).")] = None,
    access: Annotated[str | None, typer.Option(help="Threat models: comma-separated white-box, scores, top-k, "
                                                    "label-only (default: all; white-box for a federated round).")] = None,
    budget: Annotated[int | None, typer.Option(help="Query budget of every black-box attack.")] = None,
    aux: Annotated[str | None, typer.Option(help="Tabular: CSV of the attacker's population sample.")] = None,
    sensitive: Annotated[str | None, typer.Option(help="Tabular: the column to infer.")] = None,
    redact: Annotated[bool, typer.Option(help="Write no reconstructions, photos, per-person records or figures.")]
    = False,
    fail_on: Annotated[str | None, typer.Option(help=f"Exit with status 1 when any verdict reaches this level "
                                                     f"({', '.join(LEVELS)}).")] = None,
    endpoint: Annotated[str | None, typer.Option(
        help="Test a live mirisk gateway: the black-box attack of the access level it gives --api-key runs against "
             "it (its policy, budget and probe detector); --model is the model it serves.")] = None,
    api_key: ApiKeyOption = None,
    backend: BackendOption = BackendName.local,
    address: AddressOption = None,
    cpus_per_task: CpusOption = None,
    force: Annotated[bool, typer.Option(help="Discard a finished audit in --out and run again.")] = False,
    spec: ImportSpec | None = None,
) -> None:
    """Audit a model under explicit threat models: every applicable attack, a risk verdict
    per threat model, recommendations with their measured effect, and a report. Each attack
    and each DP retrain is one task (locally, or on a Ray cluster with --backend ray)."""
    if fail_on is not None and fail_on not in LEVELS:
        raise MiriskError(f"--fail-on must be one of {', '.join(LEVELS)}, got {fail_on!r}")
    if endpoint is not None and backend is BackendName.ray:
        raise MiriskError("--endpoint runs the gateway attack on this machine's connection; drop --backend ray")
    runner = make_backend(backend.value, address, cpus_per_task)
    plan, subject = plan_audit(model, data, config, access, budget, aux, sensitive, spec=spec, endpoint=endpoint,
                               api_key=api_key)
    try:
        report = _run_with_progress(plan, subject, out, redact, force, runner).document
    except KeyboardInterrupt:
        errors.print(f"interrupted: the attacks that finished are kept in {out}; rerun the same command (without "
                     "--force) to resume from them", highlight=False, soft_wrap=True)
        raise typer.Exit(130) from None
    console.print(verdict_table(report))
    console.print(f"report: {out / 'report.html'} (and report.json; owner-only)")
    if fail_on is not None and level_index(report["verdict"]["overall"]) >= level_index(fail_on):
        console.print(f"verdict {report['verdict']['overall']} reaches --fail-on {fail_on}")
        raise typer.Exit(1)


def _run_with_progress(plan, subject, out: Path, redact: bool, force: bool,
                       backend: Backend | None = None) -> AuditReport:
    with progress_bar("audit: attacks", len(plan.units)) as update:
        done = iter(range(1, len(plan.units) + 1))

        def on_unit(unit: AttackUnit, resumed: bool) -> None:
            update(next(done))
            console.print(f"  {unit.id}: {'already done (resumed)' if resumed else 'done'}")

        return run_audit(plan, subject, out, redact, force, on_unit=on_unit,
                         announce=lambda text: console.print(f"  {text} (a defence measurement)"), backend=backend)


@app.command()
@friendly_errors
def report(directory: Annotated[Path, typer.Argument(help="An audit folder holding report.json.")]) -> None:
    """Re-render report.html from report.json."""
    console.print(f"wrote {rerender(directory)}")


def verdict_table(report: dict[str, Any]) -> Table:
    """The terminal summary: each threat model's verdict and the evidence that decided it."""
    overall = report["verdict"]["overall"]
    table = Table(title=f"Model-inversion risk: [{LEVEL_STYLE[overall]}]{overall.upper()}[/]")
    for column in ("threat model", "verdict", "decided by", "evidence"):
        table.add_column(column)
    for access, item in report["verdict"]["by_threat_model"].items():
        table.add_row(access, f"[{LEVEL_STYLE[item['level']]}]{item['level']}[/]", item["decided_by"], item["reason"])
    for access, reason in report["threat_models_skipped"].items():
        table.add_row(access, "not tested", "", reason)
    for attack, reason in report.get("attacks_untested", {}).items():
        table.add_row(f"({attack})", "not tested", "", reason)
    measured = [r for r in report["recommendations"] if r["measured"]]
    if measured:
        table.caption = "recommended (measured): " + " | ".join(f"{r['action']} {r['effect']}" for r in measured[:3])
    return table


@demo_app.callback(invoke_without_command=True)
def demo_default(
    context: typer.Context,
    out: Annotated[Path, typer.Option(help="New folder for the model and the audit.")] = Path("mirisk-demo"),
    force: Annotated[bool, typer.Option(help="Overwrite a non-empty output folder.")] = False,
) -> None:
    """Without a sub-command: train a face recogniser on the bundled faces and audit it."""
    if context.invoked_subcommand is None:
        demo_audit(out, force)


@friendly_errors
def demo_audit(out: Path, force: bool) -> None:
    started = time.perf_counter()
    out_dir = prepare_output_dir(out, force=force)
    dataset = load_faces(BUNDLED_PRIVATE)
    console.print(f"AT&T faces, the private half: {len(dataset.images)} photos of {dataset.n_classes} people; training "
                  f"a {DEMO_ARCHITECTURE} face recogniser on 7 per person. The shipped face prior was learnt from "
                  "the other 20 people only.")
    with progress_bar(f"training {DEMO_ARCHITECTURE}", default_training(DEMO_ARCHITECTURE).epochs) as update:
        target = train_face_target(DEMO_ARCHITECTURE, dataset, progress=update)
    model_dir = save_target(target, out_dir / "model", force=True)
    subject = case_for("image").subject(target, dataset)
    plan = plan_for_subject(subject, DEMO_CONFIG)
    console.print(f"auditing {plan.settings['people']} of the {dataset.n_classes} people with fewer steps than "
                  f"`mirisk audit --model {model_dir}` takes by default (docs/audit.md)")
    report = _run_with_progress(plan, subject, out_dir / "audit", redact=False, force=True).document
    console.print(verdict_table(report))
    console.print(f"done in {time.perf_counter() - started:.0f} s; report: {out_dir / 'audit' / 'report.html'}")
