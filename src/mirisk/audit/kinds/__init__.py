"""The kinds of model mirisk audits, one module each, registered in the order a model folder
is recognised (the image case last: it takes model files and image model folders). Here:
recognising a model, loading it with its data, and building the plan from its case."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from mirisk.audit.case import KINDS, AuditCase, AuditSubject, SubjectOptions, case_for
from mirisk.audit.kinds import federated, tabular, segmentation, image  # noqa: F401  (registers each kind)
from mirisk.audit.plan import COMMON_KEYS, AuditPlan, read_toml
from mirisk.artifacts import read_json
from mirisk.errors import MiriskError
from mirisk.execution.tasks import portable_path
from mirisk.threats import AccessLevel
from mirisk.validation import check_budget, check_switch

__all__ = ["build_plan", "case_for", "check_config", "config_keys", "detect_case", "load_subject", "read_config"]


def detect_case(path: str | Path) -> AuditCase:
    """The case of the model at ``path``: the first registered kind that claims it."""
    path = Path(path)
    if not path.exists():
        raise MiriskError(f"model not found: {path}")
    case = next(case for case in KINDS.values() if case.claims(path))
    if case.name == "image" and path.is_file() and path.suffix == ".json":
        document = read_json(path)  # a manifest that is not JSON is named as such
        raise MiriskError(f"{path} is not a model manifest mirisk reads: its \"format\" is "
                          f"{document.get('format') if isinstance(document, dict) else None!r}; see docs/own-models.md")
    return case


def load_subject(model: str | Path, data: str | None, options: SubjectOptions | None = None) -> AuditSubject:
    """Load the model and the matching data; refuse data of the wrong type for the model.
    The subject's ``origin`` holds these arguments as JSON, so a worker can load it again."""
    options = options or SubjectOptions()
    subject = detect_case(model).load(model, data, options)
    subject.origin = {"model": portable_path(model), "data": portable_path(data), "aux": portable_path(options.aux),
                      "sensitive": options.sensitive, "known": None if options.known is None else list(options.known),
                      "spec": None if options.spec is None else asdict(options.spec)}
    return subject


def config_keys() -> frozenset[str]:
    """Every key an audit config file may hold."""
    return COMMON_KEYS.union(*(case.config_keys for case in KINDS.values()))


def check_config(config: dict[str, Any], where: str = "the config") -> dict[str, Any]:
    """``config`` if every key is one of :func:`config_keys`."""
    unknown = sorted(set(config) - config_keys())
    if unknown:
        raise MiriskError(f"{where}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(config_keys()))}")
    return config


def read_config(path: str | Path) -> dict[str, Any]:
    """A TOML file with any of :func:`config_keys` at the top level."""
    return check_config(read_toml(path), str(path))


def build_plan(model_kind: str, accesses: tuple[AccessLevel, ...], budget: int | None,
               config: dict[str, Any], gradients: bool = True) -> AuditPlan:
    """Every attack that applies to ``model_kind`` under each requested access level
    (without ``gradients``, e.g. an ONNX file, white-box attacks cannot run)."""
    case = case_for(model_kind)
    check_budget("the query budget", budget)
    others = config_keys() - COMMON_KEYS - case.config_keys
    foreign = sorted(key for key, value in config.items() if key in others and value not in (None, []))
    if foreign:
        raise MiriskError(f"setting(s) {', '.join(foreign)} do not apply to a {model_kind} model; remove them from "
                          "the config")
    units, skipped, settings = case.plan_units(accesses, budget, config, gradients)
    if check_switch("redact", config.get("redact", False)):
        settings = {**settings, "redact": True}
    if not units:
        raise MiriskError(f"no attack applies to this {model_kind} model under {', '.join(a.value for a in accesses)}: "
                          + "; ".join(f"{access}: {reason}" for access, reason in skipped.items()))
    return AuditPlan(model_kind, accesses, budget, tuple(units), skipped, settings)
