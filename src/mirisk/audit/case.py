"""What every kind of model under audit provides (the :class:`AuditCase` protocol), the
registry that holds one case per kind, and the audit's typed in-memory records: the loaded
subject and each unit's result. The audit core asks the registered case; it never compares
kind names (as Opacus registers its accountants)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from mirisk.artifacts import read_json
from mirisk.audit.plan import AttackUnit, AuditPlan
from mirisk.errors import MiriskError
from mirisk.models.imported import ImportSpec
from mirisk.threats import AccessLevel

if TYPE_CHECKING:
    from mirisk.access.remote import RemoteOracle
    from mirisk.data.images import ImageDataset
    from mirisk.data.mri import SliceDataset
    from mirisk.execution.backends import Backend

UNIT_SCHEMA = 2  # 2: face units judged by the independent recogniser, beside their label-permuted baseline


@dataclass
class AuditSubject:
    """The model under audit and the data the attacks are measured on. ``origin`` holds how
    to load it again as JSON (for a Ray worker); None for a model handed in as an object.
    ``shared`` keeps work the units share (a face prior) for this audit; the face gallery is kept by
    :func:`mirisk.pipelines.faces.face_gallery` itself."""

    kind: str
    target: Any
    dataset: ImageDataset | None = None
    slices: SliceDataset | None = None
    neighbour_slices: SliceDataset | str | None = None  # segmentation: each subject's neighbouring slices, or why none
    records: pd.DataFrame | None = None
    aux: pd.DataFrame | None = None
    sensitive: str | None = None
    known: tuple[str, ...] = ()
    remote: RemoteOracle | None = None
    origin: dict[str, Any] | None = None
    shared: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def case(self) -> AuditCase:
        return case_for(self.kind)


@dataclass
class UnitResult:
    """One attack unit's result: its payload (``result.json``, whose field names are part
    of the report's contract) and its evidence files (names to bytes, held in memory until
    saved); ``resumed`` when it was read back from an earlier run."""

    unit: AttackUnit
    payload: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    resumed: bool = False

    @property
    def metrics(self) -> dict[str, Any]:
        return self.payload["metrics"]

    def to_json(self, fingerprint: str) -> dict[str, Any]:
        """The ``result.json`` document, stamped with the unit, the plan and the schema."""
        return {**self.payload, "audit_unit": self.unit.as_dict(), "plan_fingerprint": fingerprint,
                "unit_schema": UNIT_SCHEMA}

    @classmethod
    def from_json(cls, document: dict[str, Any], unit: AttackUnit, fingerprint: str,
                  files: dict[str, bytes] | None = None) -> UnitResult | None:
        """The result stored for ``unit`` of the plan ``fingerprint``; None when it is another's."""
        if (document.get("audit_unit") != unit.as_dict() or document.get("plan_fingerprint") != fingerprint
                or document.get("unit_schema") != UNIT_SCHEMA):
            return None
        return cls(unit, document, files or {}, resumed=True)


@dataclass(frozen=True)
class SubjectOptions:
    """What the CLI's options say about the subject beyond the model and its data."""

    aux: str | None = None
    sensitive: str | None = None
    known: tuple[str, ...] | None = None
    spec: ImportSpec | None = None


Recommendation = dict[str, Any]


class AuditCase(Protocol):
    """One kind of model: how to load, plan, run, score and report it."""

    name: str  # the registry key, e.g. "image"
    title: str  # in words, e.g. "image classifier"
    default_accesses: str  # the threat models audited when none are asked for
    config_keys: frozenset[str]  # the TOML keys that apply to this kind only
    deployable: bool  # a live gateway (`mirisk serve`) can serve it
    report_labels: Mapping[str, Any]  # wording and layout of its report section

    def claims(self, path: Path) -> bool:
        """Whether the model at ``path`` is of this kind (the image case takes what is left)."""

    def load_model(self, path: Path, spec: ImportSpec | None) -> Any:
        """The model at ``path`` alone (``spec``: the import options of an image model file)."""

    def load(self, model: str | Path, data: str | None, options: SubjectOptions) -> AuditSubject:
        """The model and its data, checked against each other."""

    def describe(self, subject: AuditSubject) -> dict[str, Any]:
        """The report's ``model`` section."""

    def check_plan(self, plan: AuditPlan, subject: AuditSubject) -> None:
        """Refuse, before any work, a plan whose settings do not fit this subject."""

    def plan_context(self, subject: AuditSubject, config: dict[str, Any]) -> dict[str, Any]:
        """What the plan needs to know of this subject, added to ``config`` before planning
        (e.g. whether a face prior fits the model)."""

    def plan_units(self, accesses: tuple[AccessLevel, ...], budget: int | None, config: dict[str, Any],
                   gradients: bool) -> tuple[list[AttackUnit], dict[str, str], dict[str, Any]]:
        """The attack units, the threat models skipped (with why) and the settings."""

    def run_unit(self, unit: AttackUnit, settings: dict[str, Any], subject: AuditSubject,
                 redact: bool) -> tuple[dict[str, Any], dict[str, bytes]]:
        """One unit's payload and its evidence files (none when ``redact``)."""

    def attack_level(self, metrics: dict[str, Any]) -> tuple[str, str]:
        """The risk level of one attack's metrics and the sentences that justify it."""

    def attack_strength(self, metrics: dict[str, Any]) -> float:
        """How far one attack got above its baseline, in the units its level counts: which
        of two attacks of the same level decides a threat model."""

    def headline(self, metrics: dict[str, Any]) -> dict[str, Any]:
        """The metrics the report shows of one attack."""

    def recommendations(self, plan: AuditPlan, results: dict[str, dict[str, Any]], description: dict[str, Any],
                        defences: dict[str, Any]) -> list[Recommendation]:
        """What to do, each with its measured effect where the audit measured it."""

    def vulnerability(self, subject: AuditSubject) -> dict[str, Any]:
        """Vulnerability factors measured on the model itself."""

    def at_risk(self, plan: AuditPlan, subject: AuditSubject, results: dict[str, UnitResult]) -> Any:
        """Who (or which records) the attacks' evidence puts most at risk, or None."""

    def retrainable(self, subject: AuditSubject) -> bool:
        """Whether the audit can retrain this model with DP-SGD (its data and recipe are known)."""

    def dp_sweep(self, plan: AuditPlan, subject: AuditSubject, results: dict[str, dict[str, Any]],
                 backend: Backend | None) -> list[dict[str, Any]]:
        """The DP-SGD retrains at the plan's epsilons, measured (only when retrainable) by the
        attacks that ``results`` (each unit's payload) show leaking most."""

    def query_checks(self, plan: AuditPlan) -> bool:
        """Whether the query-budget checks and the output-policy matrix apply."""

    def policy_units(self, plan: AuditPlan, results: dict[str, dict[str, Any]]) -> list[AttackUnit]:
        """The attack units of the output-policy matrix, each the attack that ``results``
        (each unit's payload) show leaking most at its access level (none where the matrix
        does not apply)."""

    def chart_series(self, schema: str) -> tuple[list[tuple[str, str, str]], str]:
        """The attack chart's bars (metric, reference, label) and the reference's name."""


def recorded_format(path: Path) -> str | None:
    """The ``format`` a mirisk model folder records in its target.json, or None."""
    metadata = path / "target.json"
    if not (path.is_dir() and metadata.is_file()):
        return None
    found = read_json(metadata)
    return found.get("format") if isinstance(found, dict) else None


def refuse_options(model: str | Path, options: SubjectOptions, kind: str) -> None:
    """Refuse the import options (image model files only) and, unless ``kind`` is tabular,
    the tabular options, for a model folder of ``kind``."""
    if options.spec is not None and options.spec != ImportSpec():
        raise MiriskError("--input-shape, --classes and the other import options are for image model files; "
                          f"{model} is a {kind} model folder")
    if kind != "tabular" and (options.aux is not None or options.sensitive is not None or options.known):
        raise MiriskError(f"--aux, --sensitive and --known apply to tabular models; this is a {kind} model")


class NoQueryChecks:
    """For a kind without query-budget checks or an output-policy matrix (or a plan context)."""

    def plan_context(self, subject: AuditSubject, config: dict[str, Any]) -> dict[str, Any]:
        return {}

    def query_checks(self, plan: AuditPlan) -> bool:
        return False

    def policy_units(self, plan: AuditPlan, results: dict[str, dict[str, Any]]) -> list[AttackUnit]:
        return []


class NotRetrained(NoQueryChecks):
    """For a kind the audit never retrains with DP-SGD (its plan refuses epsilons)."""

    def retrainable(self, subject: AuditSubject) -> bool:
        return False

    def dp_sweep(self, plan: AuditPlan, subject: AuditSubject, results: dict[str, dict[str, Any]],
                 backend: Backend | None) -> list[dict[str, Any]]:
        raise MiriskError("the audit does not retrain this kind of model with DP-SGD")


KINDS: dict[str, AuditCase] = {}


def register_kind(case: AuditCase) -> AuditCase:
    """Add ``case`` to the registry under its name (a new kind of model needs nothing else)."""
    KINDS[case.name] = case
    return case


def case_for(kind: str) -> AuditCase:
    """The registered case of ``kind``, or a one-line error naming the kinds there are."""
    try:
        return KINDS[kind]
    except KeyError:
        raise MiriskError(f"cannot audit a {kind!r} model; mirisk audits {', '.join(KINDS)} models") from None
