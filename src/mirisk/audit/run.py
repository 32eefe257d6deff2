"""One audit, end to end: plan, run (resumably), judge, report. In memory unless given an
output folder; owner-only files throughout, and an existing report is never overwritten
without ``force``."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mirisk.access.remote import RemoteOracle
from mirisk.artifacts import make_private_dir, read_json, write_bytes, write_json
from mirisk.audit.case import AuditSubject, SubjectOptions, UnitResult
from mirisk.audit.defences import DEFENCE_FILES, run_budget_checks, run_defences, run_policy_matrix, save_defences
from mirisk.audit.kinds import build_plan, load_subject, read_config
from mirisk.audit.plan import AuditPlan, parse_accesses
from mirisk.audit.report import build_report, check_report, folder_figures, render_html
from mirisk.audit.runner import OnUnit, discard_unit_files, run_units, save_unit
from mirisk.errors import MiriskError
from mirisk.execution.backends import Backend
from mirisk.models.imported import ImportSpec
from mirisk.runtime import prepare_torch
from mirisk.threats import AccessLevel
from mirisk.validation import check_switch

REPORT_JSON, REPORT_HTML, PLAN_JSON = "report.json", "report.html", "plan.json"


def prepare_audit_dir(out: Path, force: bool) -> Path:
    """A new folder, or an unfinished audit to resume; a finished one only with ``force``
    (which discards the earlier results: the files mirisk wrote, never another file put
    there). A folder mirisk did not make is never touched."""
    if out.exists() and not out.is_dir():
        raise MiriskError(f"output path {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not (out / PLAN_JSON).is_file():
            raise MiriskError(f"{out} is not empty and holds no mirisk audit; choose a new folder")
        if (out / REPORT_JSON).is_file() and not force:
            raise MiriskError(f"{out} already holds a finished audit report; pass --force to run it again")
        if force:
            discard_audit_files(out)
    return make_private_dir(out)


def discard_audit_files(out: Path) -> None:
    """Delete the files an audit wrote in ``out`` (a link of its names goes, never what it
    points at); folders go only when nothing else is left in them."""
    for name in (PLAN_JSON, REPORT_JSON, REPORT_HTML):
        (out / name).unlink(missing_ok=True)
    attacks, defences = out / "attacks", out / "defences"
    for folder in (attacks, defences):
        if folder.is_symlink():
            folder.unlink()
    if attacks.is_dir():
        for unit in attacks.iterdir():
            if unit.is_dir() and not unit.is_symlink():
                discard_unit_files(unit)
    if defences.is_dir():
        for name in DEFENCE_FILES:
            (defences / name).unlink(missing_ok=True)
    for folder in (attacks, defences):
        with contextlib.suppress(OSError):  # absent, or holding a file of the user's
            folder.rmdir()


def plan_audit(model: Path, data: str | None, config_path: Path | None, access: str | None, budget: int | None,
               aux: str | None = None, sensitive: str | None = None, known: tuple[str, ...] | None = None,
               spec: ImportSpec | None = None, endpoint: str | None = None,
               api_key: str | None = None) -> tuple[AuditPlan, AuditSubject]:
    """Load model and data, and plan every applicable attack (flags override the config file).
    With ``endpoint``, the black-box attack of the deployed access level runs against the
    live gateway there, under the policy it applies to ``api_key``."""
    config = read_config(config_path) if config_path else {}
    sensitive = sensitive or config.get("sensitive")
    known = known or (tuple(config["known"]) if config.get("known") else None)
    subject = load_subject(model, data, SubjectOptions(aux, sensitive, known, spec))
    return plan_for_subject(subject, config, access, budget, endpoint, api_key), subject


def plan_for_subject(subject: AuditSubject, config: dict[str, Any], access: str | list[str] | None = None,
                     budget: int | None = None, endpoint: str | None = None,
                     api_key: str | None = None) -> AuditPlan:
    """The plan for a loaded subject (arguments override ``config``)."""
    requested = access if access is not None else config.get("access")
    budget = budget if budget is not None else config.get("budget")
    config = {**config, "sensitive": subject.sensitive, "known": list(subject.known)}
    config = {**config, **subject.case.plan_context(subject, config)}
    gradients = getattr(subject.target, "gradients", True)
    if endpoint is None:
        accesses = parse_accesses(requested if requested is not None else subject.case.default_accesses)
    else:
        accesses = _deployed_accesses(subject, requested, endpoint, api_key, budget, config)
    plan = build_plan(subject.kind, accesses, budget, config, gradients)
    subject.case.check_plan(plan, subject)
    return plan


def _deployed_accesses(subject: AuditSubject, requested: str | list[str] | None, endpoint: str,
                       api_key: str | None, budget: int | None, config: dict[str, Any]) -> tuple[AccessLevel, ...]:
    """Connect to the gateway, check it serves this model, and keep white-box (if asked or by
    default) plus the one black-box access level the gateway gives this key."""
    if not subject.case.deployable:
        raise MiriskError(f"--endpoint audits an image classifier served by `mirisk serve`; this is a "
                          f"{subject.case.title}")
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


@dataclass
class AuditReport:
    """A finished audit: the report document (``report.json``), the plan, each unit's result
    with its evidence files, and the defence measurements. ``save`` writes it all."""

    document: dict[str, Any]
    plan: AuditPlan
    results: dict[str, UnitResult]
    defences: dict[str, Any]

    @property
    def verdict(self) -> str:
        """The overall level (report.json's ``verdict.overall``)."""
        return self.document["verdict"]["overall"]

    @property
    def by_threat_model(self) -> dict[str, dict[str, Any]]:
        return self.document["verdict"]["by_threat_model"]

    def to_json(self) -> dict[str, Any]:
        return self.document

    def html(self) -> str:
        """The self-contained report page."""
        return render_html(self.document, self._artefact)

    def _artefact(self, path: str) -> bytes | None:
        _, unit_id, name = path.split("/", 2)
        result = self.results.get(unit_id)
        return None if result is None else result.files.get(name)

    def save(self, out: str | Path, force: bool = False) -> Path:
        """Write the audit folder (plan, each unit's result and evidence, the defence
        measurements, report.json and report.html), owner-only; an audit run again on it
        with the same plan finds everything done."""
        out = prepare_audit_dir(Path(out), force)
        fingerprint = self.plan.fingerprint()
        write_json(out / PLAN_JSON, {"fingerprint": fingerprint, **self.plan.as_dict()})
        for result in self.results.values():
            save_unit(out, result, fingerprint)
        save_defences(out, self.plan, self.defences)
        write_report(out, self.document)
        return out


def run_audit(plan: AuditPlan, subject: AuditSubject, out: Path | None = None, redact: bool = False,
              force: bool = False, on_unit: OnUnit | None = None, announce: Callable[[str], None] | None = None,
              backend: Backend | None = None) -> AuditReport:
    """Run ``plan`` (attacks and DP retrains as tasks of ``backend``, default this process).
    With ``out``, each result is written there as it finishes (an unfinished audit there is
    resumed) and so are report.json and report.html; without it, nothing touches the disk.
    ``redact`` (or ``redact = true`` in the plan's config) leaves the sensitive evidence out."""
    redact = check_switch("redact", redact) or plan.settings.get("redact", False)
    check_switch("force", force)
    prepare_torch(plan.settings["seed"])
    started = time.perf_counter()
    if out is not None:
        out = prepare_audit_dir(out, force)
        stored = out / PLAN_JSON
        if stored.is_file() and read_json(stored).get("fingerprint") != plan.fingerprint():
            raise MiriskError(f"{out} holds an unfinished audit with a different plan or model; choose a new folder "
                              "or pass --force")
        write_json(stored, {"fingerprint": plan.fingerprint(), **plan.as_dict()})
    results = run_units(plan, subject, out, redact, on_unit, backend)
    measured = {"dp_sweep": run_defences(plan, subject, results, out, announce, backend),
                "budget_checks": run_budget_checks(plan, subject, results, out, backend, announce),
                "policy_matrix": run_policy_matrix(plan, subject, results, out, backend, announce)}
    defences = {name: value for name, value in measured.items() if value}
    case = subject.case
    at_risk = None if redact else case.at_risk(plan, subject, results)
    document = build_report(plan, case, case.describe(subject), results, case.vulnerability(subject), at_risk,
                            defences, redact, time.perf_counter() - started)
    report = AuditReport(document, plan, results, defences)
    if out is not None:
        write_report(out, document, report.html())
    return report


def write_report(out: Path, document: dict[str, Any], html: str | None = None) -> None:
    """report.json, then report.html (rendered from the folder's artefacts when not given)."""
    write_json(out / REPORT_JSON, document)
    write_bytes(out / REPORT_HTML, (html or render_html(document, folder_figures(out))).encode("utf-8"))


def rerender(directory: Path) -> Path:
    """Re-write report.html from report.json (e.g. after an upgrade of the template)."""
    path = directory / REPORT_JSON
    if not path.is_file():
        raise MiriskError(f"no {REPORT_JSON} in {directory}")
    report = check_report(read_json(path), path)
    write_bytes(directory / REPORT_HTML, render_html(report, folder_figures(directory)).encode("utf-8"))
    return directory / REPORT_HTML
