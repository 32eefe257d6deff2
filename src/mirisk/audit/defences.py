"""The defence measurements of an audit, each resumable (with an output folder) and run as
backend tasks: DP-SGD retrains of models mirisk trained, the black-box attacks rerun under a
query budget, and the output-policy matrix. Which apply is the model's case's to say."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from mirisk.artifacts import prepare_output_dir, read_json, write_json
from mirisk.audit.case import UNIT_SCHEMA, AuditSubject, UnitResult
from mirisk.audit.checks import BudgetCheck, PolicyRow
from mirisk.audit.plan import AttackUnit, AuditPlan
from mirisk.audit.runner import execute_units
from mirisk.execution.backends import Backend
from mirisk.threats import AccessLevel

Announce = Callable[[str], None] | None


def run_defences(plan: AuditPlan, subject: AuditSubject, results: dict[str, UnitResult], out_dir: Path | None,
                 announce: Announce = None, backend: Backend | None = None) -> list[dict[str, Any]] | None:
    """Retrain a model mirisk trained (so its data and split are known) with DP-SGD at the
    plan's epsilons and measure utility and attack success again, by the attacks that leaked
    most (the case says how, or that it cannot). Resumable like the attacks."""
    if not plan.settings["epsilons"] or not subject.case.retrainable(subject):
        return None
    path = None if out_dir is None else out_dir / "defences" / "dp_sweep.json"
    key = {"epsilons": plan.settings["epsilons"], "plan_fingerprint": plan.fingerprint()}
    if path is not None and path.is_file():
        stored = read_json(path)
        if {k: stored.get(k) for k in key} == key:
            return stored["points"]
    if announce is not None:
        announce(f"retraining with DP-SGD at epsilon {', '.join(f'{e:g}' for e in plan.settings['epsilons'])}")
    points = subject.case.dp_sweep(plan, subject, _payloads(results), backend)
    if path is not None:
        prepare_output_dir(path.parent, force=True)
        write_json(path, {**key, "points": points})
    return points


BUDGET_DIVISOR = 10  # the budget checked: a tenth of the queries the unlimited attack used


def run_budget_checks(plan: AuditPlan, subject: AuditSubject, results: dict[str, UnitResult],
                      out_dir: Path | None, backend: Backend | None = None,
                      announce: Announce = None) -> list[dict[str, Any]] | None:
    """Run each attack that spends queries (on images: scores, top-k and label-only, in pixel
    space and in a face prior's latent space) again under a per-deployment budget of a tenth
    of the queries it used without one, so the query-limit advice is measured, not derived.
    Metrics only (no images); resumable like the attacks."""
    units = [unit for unit in plan.units if "budget" in unit.params]  # the units that spend queries
    if not subject.case.query_checks(plan) or not units or plan.budget is not None:
        return None
    path = None if out_dir is None else out_dir / "defences" / "budget_checks.json"
    stored = _stored(path, plan, "checks")
    if stored is not None:
        return stored
    if announce is not None:
        announce(f"rerunning {len(units)} black-box attack(s) under a tenth of their queries")
    budgets = [max(1, results[unit.id].payload["queries_used"] // BUDGET_DIVISOR) for unit in units]
    limited = [replace(unit, id=f"{unit.id}-budget", params={**unit.params, "budget": budget})
               for unit, budget in zip(units, budgets, strict=True)]
    payloads = _metrics_only(limited, plan, subject, backend)
    checks = [BudgetCheck.measured(unit, budget, payload).to_json()
              for unit, budget, payload in zip(units, budgets, payloads, strict=True)]
    _store(path, plan, "checks", checks)
    return checks


def run_policy_matrix(plan: AuditPlan, subject: AuditSubject, results: dict[str, UnitResult],
                      out_dir: Path | None, backend: Backend | None = None,
                      announce: Announce = None) -> list[dict[str, Any]] | None:
    """Each output policy of the plan beside those the threat models tested (full scores,
    top-k, labels only): the attack that gets through it, and what it costs legitimate
    users (accuracy and calibration on held-out photos). Metrics only; resumable."""
    units = subject.case.policy_units(plan, _payloads(results)) if subject.case.query_checks(plan) else []
    if not units or AccessLevel.SCORES not in plan.accesses:
        return None
    path = None if out_dir is None else out_dir / "defences" / "policy_matrix.json"
    stored = _stored(path, plan, "rows")
    if stored is not None:
        return stored
    if announce is not None:
        announce(f"attacking through the output policies {', '.join(unit.policy for unit in units)}")
    tested = [(unit, results[unit.id].payload) for unit in plan.units if unit.policy is not None]
    measured = list(zip(units, _metrics_only(units, plan, subject, backend), strict=True))
    rows = [PolicyRow.measured(unit, payload).to_json() for unit, payload in [*tested, *measured]]
    _store(path, plan, "rows", rows)
    return rows


def _payloads(results: dict[str, UnitResult]) -> dict[str, dict[str, Any]]:
    return {unit_id: result.payload for unit_id, result in results.items()}


def _stored(path: Path | None, plan: AuditPlan, field: str) -> Any | None:
    """``field`` of a defence measurement stored at ``path`` for this same plan (None: none)."""
    if path is None or not path.is_file():
        return None
    stored = read_json(path)
    current = stored.get("plan_fingerprint") == plan.fingerprint() and stored.get("unit_schema") == UNIT_SCHEMA
    return stored[field] if current else None


def _store(path: Path | None, plan: AuditPlan, field: str, value: Any) -> None:
    if path is None:
        return
    prepare_output_dir(path.parent, force=True)
    write_json(path, {"plan_fingerprint": plan.fingerprint(), "unit_schema": UNIT_SCHEMA, field: value})


def _metrics_only(units: list[AttackUnit], plan: AuditPlan, subject: AuditSubject,
                  backend: Backend | None) -> list[dict[str, Any]]:
    """The payloads of extra attack units, redacted (no images), without the label-permuted
    baseline (they are compared with the units the audit ran)."""
    results = execute_units(units, plan, subject, redact=True, backend=backend,
                            settings={**plan.settings, "baseline": False})
    return [result.payload for result in results]


DEFENCE_FILES = ("dp_sweep.json", "budget_checks.json", "policy_matrix.json")


def save_defences(out_dir: Path, plan: AuditPlan, defences: dict[str, Any]) -> None:
    """Write the defence measurements of an in-memory audit as a resumable audit would have."""
    if defences.get("dp_sweep"):
        prepare_output_dir(out_dir / "defences", force=True)
        write_json(out_dir / "defences" / "dp_sweep.json", {"epsilons": plan.settings["epsilons"],
                                                            "plan_fingerprint": plan.fingerprint(),
                                                            "points": defences["dp_sweep"]})
    for name, field in (("budget_checks", "checks"), ("policy_matrix", "rows")):
        if defences.get(name):
            _store(out_dir / "defences" / f"{name}.json", plan, field, defences[name])
