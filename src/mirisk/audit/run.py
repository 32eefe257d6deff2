"""One audit, end to end: plan, run (resumably), judge, report. Owner-only files throughout;
an existing report is never overwritten without ``force``."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mirisk.access.remote import RemoteOracle
from mirisk.artifacts import DIR_MODE, read_json, write_bytes, write_json
from mirisk.audit.plan import AttackUnit, AuditPlan, build_plan, parse_accesses, read_config
from mirisk.audit.report import build_report, render_html
from mirisk.audit.defences import run_budget_checks, run_defences, run_policy_matrix
from mirisk.audit.runner import AuditSubject, load_subject, run_units
from mirisk.errors import MiriskError
from mirisk.execution.backends import Backend
from mirisk.metrics.vulnerability import (
    federated_vulnerability, image_vulnerability, most_at_risk_people, most_at_risk_records,
    segmentation_vulnerability, tabular_vulnerability,
)
from mirisk.models.imported import ImportSpec
from mirisk.runtime import prepare_torch
from mirisk.threats import AccessLevel

REPORT_JSON, REPORT_HTML, PLAN_JSON = "report.json", "report.html", "plan.json"
GENERATED = ("attacks", "defences", PLAN_JSON, REPORT_JSON, REPORT_HTML)


def prepare_audit_dir(out: Path, force: bool) -> Path:
    """A new folder, or an unfinished audit to resume; a finished one only with ``force``
    (which discards the earlier results). A folder mirisk did not make is never touched."""
    if out.exists() and not out.is_dir():
        raise MiriskError(f"output path {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not (out / PLAN_JSON).is_file():
            raise MiriskError(f"{out} is not empty and holds no mirisk audit; choose a new folder")
        if (out / REPORT_JSON).is_file() and not force:
            raise MiriskError(f"{out} already holds a finished audit report; pass --force to run it again")
        if force:
            for name in GENERATED:
                target = out / name
                if target.is_dir():
                    shutil.rmtree(target)
                elif target.exists():
                    target.unlink()
    out.mkdir(parents=True, exist_ok=True)
    out.chmod(DIR_MODE)
    return out


def plan_audit(model: Path, data: str | None, config_path: Path | None, access: str | None, budget: int | None,
               aux: str | None = None, sensitive: str | None = None, known: tuple[str, ...] | None = None,
               spec: ImportSpec | None = None, endpoint: str | None = None,
               api_key: str | None = None) -> tuple[AuditPlan, AuditSubject]:
    """Load model and data, and plan every applicable attack (flags override the config file).
    With ``endpoint``, the black-box attack of the deployed access level runs against the
    live gateway there, under the policy it applies to ``api_key``."""
    config = read_config(config_path) if config_path else {}
    requested = access if access is not None else config.get("access")
    budget = budget if budget is not None else config.get("budget")
    sensitive = sensitive or config.get("sensitive")
    known = known or (tuple(config["known"]) if config.get("known") else None)
    subject = load_subject(model, data, aux, sensitive, known, spec)
    config = {**config, "sensitive": subject.sensitive, "known": list(subject.known)}
    gradients = subject.kind != "image" or subject.target.gradients
    if endpoint is None:
        default = "white-box" if subject.kind == "federated" else "white-box,scores,top-k,label-only"
        accesses = parse_accesses(requested if requested is not None else default)
    else:
        accesses = _deployed_accesses(subject, requested, endpoint, api_key, budget, config)
    return build_plan(subject.kind, accesses, budget, config, gradients), subject


def _deployed_accesses(subject: AuditSubject, requested: str | list[str] | None, endpoint: str,
                       api_key: str | None, budget: int | None, config: dict[str, Any]) -> tuple[AccessLevel, ...]:
    """Connect to the gateway, check it serves this model, and keep white-box (if asked or by
    default) plus the one black-box access level the gateway gives this key."""
    if subject.kind != "image":
        raise MiriskError(f"--endpoint audits an image classifier served by `mirisk serve`; this is a {subject.kind} "
                          "model")
    remote = RemoteOracle(endpoint, api_key or "", budget=budget)
    remote.check_serves(subject.target.class_names, subject.target.input_shape)
    deployed = remote.policy.access
    accesses = parse_accesses(requested if requested is not None else f"white-box,{deployed.value}")
    other = [access.value for access in accesses if access not in (AccessLevel.WHITE_BOX, deployed)]
    if other:
        raise MiriskError(f"the gateway answers this key under policy {remote.policy.spec} ({deployed.value} access); "
                          f"it cannot test {', '.join(other)}: use a key with that policy, or audit without --endpoint")
    subject.remote = remote
    config["deployment"] = {"endpoint": remote.endpoint, "policy": remote.policy.spec, "access": deployed.value}
    return accesses


def run_audit(plan: AuditPlan, subject: AuditSubject, out: Path, redact: bool, force: bool,
              on_unit: Callable[[AttackUnit, bool], None] | None = None,
              announce: Callable[[str], None] | None = None, backend: Backend | None = None) -> dict[str, Any]:
    """Run ``plan`` into ``out`` (attacks and DP retrains as tasks of ``backend``, default
    this process) and write report.json and report.html; returns the report."""
    prepare_torch(plan.settings["seed"])
    started = time.perf_counter()
    out = prepare_audit_dir(out, force)
    stored = out / PLAN_JSON
    if stored.is_file() and read_json(stored).get("fingerprint") != plan.fingerprint():
        raise MiriskError(f"{out} holds an unfinished audit with a different plan or model; choose a new folder "
                          "or pass --force")
    write_json(stored, {"fingerprint": plan.fingerprint(), **plan.as_dict()})
    results = run_units(plan, subject, out, redact, on_unit, backend)
    defences = {"dp_sweep": run_defences(plan, subject, out, announce, backend),
                "budget_checks": run_budget_checks(plan, subject, results, out, backend, announce),
                "policy_matrix": run_policy_matrix(plan, subject, results, out, backend, announce)}
    if subject.kind == "image":
        vulnerability = image_vulnerability(subject.target, subject.dataset)
        at_risk = most_at_risk_people(results, subject.target.class_names, rank_key="independent_rank")
    elif subject.kind == "federated":
        vulnerability, at_risk = federated_vulnerability(subject.target), None  # the replay's people are stand-ins
    elif subject.kind == "segmentation":
        vulnerability = segmentation_vulnerability(subject.target, subject.slices)
        at_risk = most_at_risk_people(results, tuple(subject.target.data["train_subjects"]), rank_key="reid_rank")
    else:
        vulnerability = tabular_vulnerability(subject.target)
        at_risk = _tabular_at_risk(out, subject, plan)
    report = build_report(plan, subject.describe(), results, vulnerability, None if redact else at_risk,
                          {name: value for name, value in defences.items() if value}, redact,
                          time.perf_counter() - started, out)
    write_report(out, report)
    return report


def _tabular_at_risk(out: Path, subject: AuditSubject, plan: AuditPlan) -> dict[str, Any] | None:
    import pandas as pd

    first = next((unit for unit in plan.units if unit.attack == "fredrikson"), None)
    path = out / "attacks" / first.id / "inferences.csv" if first else None
    if path is None or not path.is_file():
        return None
    return most_at_risk_records(pd.read_csv(path, dtype={subject.target.schema.id_column: str}),
                                subject.target.schema.id_column, subject.sensitive)


def write_report(out: Path, report: dict[str, Any]) -> None:
    write_json(out / REPORT_JSON, report)
    write_bytes(out / REPORT_HTML, render_html(report, out).encode("utf-8"))


def rerender(directory: Path) -> Path:
    """Re-write report.html from report.json (e.g. after an upgrade of the template)."""
    from mirisk.audit.report import check_report

    path = directory / REPORT_JSON
    if not path.is_file():
        raise MiriskError(f"no {REPORT_JSON} in {directory}")
    report = check_report(read_json(path), path)
    write_bytes(directory / REPORT_HTML, render_html(report, directory).encode("utf-8"))
    return directory / REPORT_HTML

