"""The defence measurements of an audit, each resumable and run as backend tasks: DP-SGD
retrains of models mirisk trained, the black-box attacks rerun under a query budget, and
the output-policy matrix."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from mirisk.artifacts import prepare_output_dir, read_json, write_json
from mirisk.audit.plan import AttackUnit, AuditPlan, policy_units
from mirisk.audit.runner import UNIT_SCHEMA, AuditSubject
from mirisk.execution.backends import Backend, LocalBackend
from mirisk.models.architectures import ARCHITECTURES
from mirisk.pipelines.face_sweep import epsilon_recipes, face_sweep
from mirisk.pipelines.faces import headline_identification
from mirisk.pipelines.iwpc import SENSITIVE, dp_sweep, recorded_split
from mirisk.threats import AccessLevel


def run_defences(plan: AuditPlan, subject: AuditSubject, out_dir: Path,
                 announce: Callable[[str], None] | None = None,
                 backend: Backend | None = None) -> list[dict[str, Any]] | None:
    """Retrain a model mirisk trained (so its data and split are known) with DP-SGD at the
    plan's epsilons and measure utility and attack success again: face recognisers under the
    white-box and score attacks, the IWPC linear model under the attribute attack. Resumable
    like the attacks."""
    if not plan.settings["epsilons"] or not _retrainable(subject):
        return None
    path = out_dir / "defences" / "dp_sweep.json"
    key = {"epsilons": plan.settings["epsilons"], "plan_fingerprint": plan.fingerprint()}
    if path.is_file():
        stored = read_json(path)
        if {k: stored.get(k) for k in key} == key:
            return stored["points"]
    seed = plan.settings["seed"]
    if announce is not None:
        announce(f"retraining with DP-SGD at epsilon {', '.join(f'{e:g}' for e in plan.settings['epsilons'])}")
    if subject.kind == "image":
        points = face_sweep(subject.dataset.source, subject.target.architecture,
                            epsilon_recipes(tuple(plan.settings["epsilons"])),
                            (int(subject.target.data["n_train_per_subject"]),), plan.settings["blackbox_iterations"],
                            plan.settings["miface_iterations"], seed, backend=backend)
    else:
        points = dp_sweep(recorded_split(subject.target), (*plan.settings["epsilons"], None), seed=seed)
    prepare_output_dir(path.parent, force=True)
    write_json(path, {**key, "points": points})
    return points


BUDGET_DIVISOR = 10  # the budget checked: a tenth of the queries the unlimited attack used


def run_budget_checks(plan: AuditPlan, subject: AuditSubject, results: dict[str, dict[str, Any]],
                      out_dir: Path, backend: Backend | None = None,
                      announce: Callable[[str], None] | None = None) -> list[dict[str, Any]] | None:
    """Run each black-box attack on images (scores, top-k, label-only) again under a
    per-deployment budget of a tenth of the queries it used without one, so the query-limit
    advice is measured, not derived. Metrics only (no images); resumable like the attacks."""
    units = [unit for unit in plan.units if unit.attack in ("blackbox", "labelonly")]
    if plan.model_kind != "image" or not units or plan.budget is not None or "deployment" in plan.settings:
        return None
    path = out_dir / "defences" / "budget_checks.json"
    stored = _stored(path, plan, "checks")
    if stored is not None:
        return stored
    if announce is not None:
        announce(f"rerunning {len(units)} black-box attack(s) under a tenth of their queries")
    budgets = [max(1, results[unit.id]["queries_used"] // BUDGET_DIVISOR) for unit in units]
    limited = [replace(unit, id=f"{unit.id}-budget", params={**unit.params, "budget": budget})
               for unit, budget in zip(units, budgets, strict=True)]
    payloads = _metrics_only(limited, plan, subject, backend)
    checks = [{"unit": unit.id, "access": unit.access.value, "budget": budget, "queries_used": payload["queries_used"],
               "queries_per_person": budget / subject.target.n_classes,
               **headline_identification(payload["metrics"])}
              for unit, budget, payload in zip(units, budgets, payloads, strict=True)]
    _store(path, plan, "checks", checks)
    return checks


def run_policy_matrix(plan: AuditPlan, subject: AuditSubject, results: dict[str, dict[str, Any]],
                      out_dir: Path, backend: Backend | None = None,
                      announce: Callable[[str], None] | None = None) -> list[dict[str, Any]] | None:
    """Each output policy of the plan beside those the threat models tested (full scores,
    top-k, labels only): the attack that gets through it, and what it costs legitimate
    users (accuracy and calibration on held-out photos). Metrics only; resumable."""
    units = policy_units(plan)
    if plan.model_kind != "image" or not units or AccessLevel.SCORES not in plan.accesses \
            or "deployment" in plan.settings:
        return None
    path = out_dir / "defences" / "policy_matrix.json"
    stored = _stored(path, plan, "rows")
    if stored is not None:
        return stored
    if announce is not None:
        announce(f"attacking through the output policies {', '.join(unit.policy for unit in units)}")
    tested = [(unit, results[unit.id]) for unit in plan.units if unit.policy is not None]
    measured = list(zip(units, _metrics_only(units, plan, subject, backend), strict=True))
    rows = [{"policy": unit.policy, "access": unit.access.value, "attack": unit.id,
             **headline_identification(payload["metrics"]), "queries_used": payload["queries_used"],
             **payload["policy_cost"]} for unit, payload in [*tested, *measured]]
    _store(path, plan, "rows", rows)
    return rows


def _stored(path: Path, plan: AuditPlan, field: str) -> Any | None:
    """``field`` of a defence measurement stored at ``path`` for this same plan (None: none)."""
    if not path.is_file():
        return None
    stored = read_json(path)
    current = stored.get("plan_fingerprint") == plan.fingerprint() and stored.get("unit_schema") == UNIT_SCHEMA
    return stored[field] if current else None


def _store(path: Path, plan: AuditPlan, field: str, value: Any) -> None:
    prepare_output_dir(path.parent, force=True)
    write_json(path, {"plan_fingerprint": plan.fingerprint(), "unit_schema": UNIT_SCHEMA, field: value})


def _metrics_only(units: list[AttackUnit], plan: AuditPlan, subject: AuditSubject,
                  backend: Backend | None) -> list[dict[str, Any]]:
    """The payloads of extra attack units run as backend tasks, redacted (no images), without
    the label-permuted baseline (they are compared with the units the audit ran)."""
    documents = [{"origin": subject.origin, "unit": unit.as_dict(), "model_kind": plan.model_kind,
                  "settings": {**plan.settings, "baseline": False}, "redact": True} for unit in units]
    return [result["payload"] for result in (backend or LocalBackend()).map("audit-unit", documents)]


def _retrainable(subject: AuditSubject) -> bool:
    """A mirisk-trained model with its training data recorded (not an imported file)."""
    if subject.kind == "image":
        target = subject.target
        return (not target.provenance and target.architecture in ARCHITECTURES
                and "n_train_per_subject" in target.data and target.data.get("split") != "unknown")
    provenance = subject.target.training.get("data")
    return bool(subject.is_iwpc and subject.target.kind == "linear" and provenance and subject.sensitive in SENSITIVE)
