"""Run an audit plan: load the model and its data, run each attack unit once (a finished
unit is found on disk and not re-run), then the defence measurements that apply."""

from __future__ import annotations

import base64
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from mirisk.access.oracle import Oracle, QueryAccess
from mirisk.access.remote import RemoteOracle
from mirisk.access.policies import parse_policy
from mirisk.access.whitebox import WhiteBoxAccess
from mirisk.artifacts import open_private, prepare_output_dir, read_json, write_bytes, write_json, write_npz
from mirisk.attacks.basis import dct_basis
from mirisk.attacks.blackbox import ScoreBlackBox
from mirisk.attacks.labelonly import BoundaryRepulsion
from mirisk.audit.federated import load_replay_images, run_gradient_unit
from mirisk.audit.plan import AttackUnit, AuditPlan, policy_units
from mirisk.audit.segmentation import load_segmentation_data, run_decoder_unit
from mirisk.data.faces import load_faces
from mirisk.data.images import ImageDataset
from mirisk.data.iwpc import IWPC_SCHEMA
from mirisk.data.mri import SliceDataset
from mirisk.errors import MiriskError
from mirisk.execution.backends import Backend, LocalBackend
from mirisk.execution.tasks import portable_path
from mirisk.figures import reconstruction_grid
from mirisk.fl.record import ServerRecord
from mirisk.models.architectures import ARCHITECTURES
from mirisk.models.imported import ImportSpec
from mirisk.models.loading import load_image_target
from mirisk.models.segmentation import SegmentationTarget
from mirisk.models.segmentation_store import FORMAT as SEGMENTER_FORMAT
from mirisk.models.segmentation_store import load_segmenter
from mirisk.models.tabular import TabularRegressor
from mirisk.models.tabular_store import FORMAT as TABULAR_FORMAT
from mirisk.models.tabular_store import load_tabular_target
from mirisk.models.target import TargetModel
from mirisk.pipelines.attribute import AttributeSetting, run_attribute_attack
from mirisk.pipelines.face_sweep import epsilon_recipes, face_sweep
from mirisk.pipelines.faces import configured_miface, measure_face_reconstructions, target_split
from mirisk.pipelines.iwpc import SENSITIVE, attack_tables, dp_sweep, recorded_split, task_columns
from mirisk.pipelines.matrix import policy_cost
from mirisk.threats import AccessLevel

UNIT_RESULT = "result.json"


@dataclass
class AuditSubject:
    """The model under audit and the data the attacks are measured on."""

    kind: str
    target: TargetModel | TabularRegressor | SegmentationTarget | ServerRecord
    dataset: ImageDataset | None = None
    slices: SliceDataset | None = None
    records: pd.DataFrame | None = None
    aux: pd.DataFrame | None = None
    sensitive: str | None = None
    known: tuple[str, ...] = ()
    remote: RemoteOracle | None = None
    origin: dict[str, Any] = field(default_factory=dict)

    @property
    def is_iwpc(self) -> bool:
        return self.kind == "tabular" and self.target.schema.as_dict() == IWPC_SCHEMA.as_dict()

    def describe(self) -> dict[str, Any]:
        if self.kind == "image":
            return {"kind": "image classifier", "architecture": self.target.architecture,
                    "classes": self.target.n_classes, "metrics": self.target.metrics,
                    "provenance": self.target.provenance,
                    "data": {"source": self.dataset.source, "images": len(self.dataset.images),
                             "training_split": "unknown" if self.target.data.get("split") == "unknown" else "recorded"}}
        if self.kind == "federated":
            record = self.target
            return {"kind": "federated round", "architecture": record.architecture, "protocol": record.protocol,
                    "clients": record.n_clients, "images": record.n_images, "defence": record.defence,
                    "metrics": {}, "data": {"source": self.dataset.source, "role": "stand-in client images"}}
        if self.kind == "segmentation":
            return {"kind": "segmentation model", "architecture": self.target.architecture,
                    "classes": list(self.target.class_names), "metrics": self.target.metrics,
                    "data": {"source": self.slices.source, "subjects": len(self.slices.subjects),
                             "training_subjects": len(self.target.data["train_subjects"]),
                             "slices_per_subject": self.slices.slices_per_subject}}
        return {"kind": "tabular regressor", "model": self.target.kind, "dp": self.target.training.get("dp"),
                "metrics": self.target.metrics, "sensitive": self.sensitive, "known": list(self.known),
                "data": {"records": len(self.records), "aux": len(self.aux)}}


def model_kind(path: str | Path) -> str:
    """'tabular', 'segmentation' or 'federated' for a mirisk folder of that kind (a server
    record for a federated round); 'image' otherwise (an image model folder or a model
    file, whose format the loader checks)."""
    path = Path(path)
    if not path.exists():
        raise MiriskError(f"model not found: {path}")
    if path.is_dir() and (path / "record.json").is_file():
        return "federated"
    metadata = path / "target.json"
    if path.is_dir() and metadata.is_file():
        found = read_json(metadata)
        if isinstance(found, dict) and found.get("format") == TABULAR_FORMAT:
            return "tabular"
        if isinstance(found, dict) and found.get("format") == SEGMENTER_FORMAT:
            return "segmentation"
    return "image"


def load_subject(model: str | Path, data: str | None, aux: str | None, sensitive: str | None,
                 known: tuple[str, ...] | None, spec: ImportSpec | None = None) -> AuditSubject:
    """Load the model and the matching data; refuse data of the wrong type for the model.
    The subject's ``origin`` holds these arguments as JSON, so a worker can load it again."""
    origin = {"model": portable_path(model), "data": portable_path(data), "aux": portable_path(aux),
              "sensitive": sensitive,
              "known": None if known is None else list(known), "spec": None if spec is None else asdict(spec)}
    kind = model_kind(model)
    if kind == "image":
        if aux is not None or sensitive is not None:
            raise MiriskError("--aux and --sensitive apply to tabular models; this is an image classifier")
        if data is not None and Path(data).is_file():
            raise MiriskError(f"{data} is a file; an image classifier is audited on a folder of photos "
                              "(one sub-folder per person) or bundled:att_faces")
        metadata = Path(model) / "target.json"
        recorded = read_json(metadata).get("data", {}) if metadata.is_file() else {}
        dataset = load_faces(data if data is not None else recorded.get("source"))
        target = load_image_target(model, spec, dataset)
        target_split(target, dataset)
        return AuditSubject(kind, target, dataset=dataset, origin=origin)
    if spec is not None and spec != ImportSpec():
        raise MiriskError("--input-shape, --classes and the other import options are for image model files; "
                          f"{model} is a {kind} model folder")
    if kind in ("segmentation", "federated") and (aux is not None or sensitive is not None or known):
        raise MiriskError(f"--aux, --sensitive and --known apply to tabular models; this is a {kind} model")
    if kind == "federated":
        record = ServerRecord.load(model)
        return AuditSubject(kind, record, dataset=load_replay_images(record, data), origin=origin)
    if kind == "segmentation":
        target = load_segmenter(model)
        return AuditSubject(kind, target, slices=load_segmentation_data(target, data), origin=origin)
    target = load_tabular_target(model)
    if data is not None and Path(data).is_dir():
        raise MiriskError(f"{data} is a folder; a tabular model is audited on a CSV table")
    records, population = attack_tables(target, data, aux)
    sensitive, known = task_columns(target, sensitive, known)
    return AuditSubject(kind, target, records=records, aux=population, sensitive=sensitive, known=tuple(known),
                        origin=origin)


def _finished(folder: Path, unit: AttackUnit, fingerprint: str) -> dict[str, Any] | None:
    path = folder / UNIT_RESULT
    if not path.is_file():
        return None
    payload = read_json(path)
    if payload.get("audit_unit") == unit.as_dict() and payload.get("plan_fingerprint") == fingerprint:
        return payload
    return None


def run_units(plan: AuditPlan, subject: AuditSubject, out_dir: Path, redact: bool,
              on_unit: Callable[[AttackUnit, bool], None] | None = None,
              backend: Backend | None = None) -> dict[str, dict[str, Any]]:
    """Each unit's payload, by id. A unit whose result.json is on disk for this same plan is
    loaded, not re-run; result.json is written last, so an interrupted unit runs again.
    Units run as tasks of ``backend`` (default: this process); a unit that attacks a live
    gateway runs here, on the audit's own connection."""
    results: dict[str, dict[str, Any]] = {}
    fingerprint = plan.fingerprint()
    prepare_output_dir(out_dir / "attacks", force=True)

    def store(unit: AttackUnit, payload: dict[str, Any], files: dict[str, bytes]) -> None:
        folder = prepare_output_dir(out_dir / "attacks" / unit.id, force=True)
        for name, content in files.items():
            write_bytes(folder / name, content)
        payload.update(audit_unit=unit.as_dict(), plan_fingerprint=fingerprint)
        write_json(folder / UNIT_RESULT, payload)
        results[unit.id] = payload
        if on_unit is not None:
            on_unit(unit, False)

    pending = []
    for unit in plan.units:
        payload = _finished(out_dir / "attacks" / unit.id, unit, fingerprint)
        if payload is None:
            pending.append(unit)
            continue
        results[unit.id] = payload
        if on_unit is not None:
            on_unit(unit, True)
    for unit in (unit for unit in pending if unit.id.startswith("gateway-")):
        store(unit, *_unit_with_files(unit, plan.model_kind, plan.settings, subject, redact))
    tasks = [unit for unit in pending if not unit.id.startswith("gateway-")]
    documents = [{"origin": subject.origin, "unit": unit.as_dict(), "model_kind": plan.model_kind,
                  "settings": plan.settings, "redact": redact} for unit in tasks]
    (backend or LocalBackend()).map(
        "audit-unit", documents,
        on_result=lambda index, result: store(tasks[index], result["payload"],
                                              {name: base64.b64decode(text) for name, text in result["files"].items()}))
    return {unit.id: results[unit.id] for unit in plan.units}


def run_unit_task(task: dict[str, Any]) -> dict[str, Any]:
    """One audit unit as a backend task: load the subject from its origin, run the unit, and
    return its payload and files (base64), which the audit writes owner-only."""
    origin = task["origin"]
    spec = None if origin["spec"] is None else ImportSpec(**{
        key: tuple(value) if isinstance(value, list) else value for key, value in origin["spec"].items()})
    subject = load_subject(origin["model"], origin["data"], origin["aux"], origin["sensitive"],
                           None if origin["known"] is None else tuple(origin["known"]), spec)
    payload, files = _unit_with_files(AttackUnit.from_dict(task["unit"]), task["model_kind"], task["settings"],
                                      subject, task["redact"])
    return {"payload": payload, "files": {name: base64.b64encode(content).decode() for name, content in files.items()}}


def _unit_with_files(unit: AttackUnit, model_kind: str, settings: dict[str, Any], subject: AuditSubject,
                     redact: bool) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Run one unit in a private scratch folder; its payload and the bytes of its files."""
    with tempfile.TemporaryDirectory(prefix="mirisk-unit-") as scratch:
        if model_kind == "segmentation":
            payload = run_decoder_unit(unit, settings, subject.target, subject.slices, Path(scratch), redact)
        elif model_kind == "federated":
            payload = run_gradient_unit(unit, settings, subject.target, subject.dataset, Path(scratch), redact)
        else:
            run = _run_image_unit if model_kind == "image" else _run_tabular_unit
            payload = run(unit, settings, subject, Path(scratch), redact)
        return payload, {path.name: path.read_bytes() for path in Path(scratch).iterdir() if path.is_file()}


def _run_image_unit(unit: AttackUnit, settings: dict[str, Any], subject: AuditSubject, folder: Path,
                    redact: bool) -> dict[str, Any]:
    target, dataset, seed = subject.target, subject.dataset, settings["seed"]
    people = torch.arange(target.n_classes)
    if unit.attack == "miface":
        result = configured_miface(iterations=unit.params["iterations"]).run(WhiteBoxAccess(target), people)
    else:
        attack = (ScoreBlackBox(iterations=unit.params["iterations"]) if unit.attack == "blackbox"
                  else BoundaryRepulsion(iterations=unit.params["iterations"]))
        oracle: QueryAccess
        if unit.id.startswith("gateway-"):
            if subject.remote is None:
                raise MiriskError(f"unit {unit.id} attacks a live gateway; give --endpoint and --api-key")
            oracle = subject.remote
        else:
            oracle = Oracle(target, parse_policy(unit.policy), budget=unit.params.get("budget"))
        result = attack.run(oracle, people, dct_basis(target.input_shape), seed=seed)
    report = measure_face_reconstructions(target, dataset, result, seed=seed)
    payload = report.payload
    if unit.id.startswith("gateway-"):
        payload["deployment"] = {**settings["deployment"], "stopped_by_gateway": sorted(
            {reason for reason in result.stop_reasons if reason.startswith("gateway-")})}
    if unit.policy is not None:
        payload["policy_cost"] = policy_cost(target, dataset, unit.policy)
    if not redact:
        ranks = report.metrics["per_target"]["evaluator_rank"]
        titles = [f"{target.class_names[i]} (rank {rank})" for i, rank in enumerate(ranks)]
        write_bytes(folder / "reconstructions.png", reconstruction_grid(
            report.originals, result.reconstructions.numpy(), titles,
            heading=f"{unit.id}: top: a training photo; bottom: the reconstruction (rank of the true person)"))
        write_npz(folder / "reconstructions.npz", reconstructions=result.reconstructions.numpy(),
                  labels=result.target_labels.numpy())
    return payload


def _run_tabular_unit(unit: AttackUnit, settings: dict[str, Any], subject: AuditSubject, folder: Path,
                      redact: bool) -> dict[str, Any]:
    setting = AttributeSetting(subject.sensitive, subject.known, unit.attack, unit.policy,
                               unit.params["outcome"], budget=unit.params.get("budget"), seed=settings["seed"])
    report = run_attribute_attack(subject.target, subject.records, subject.aux, setting)
    if not redact:
        with open_private(folder / "inferences.csv") as handle:
            report.inferences.to_csv(handle, index=False)
    return report.payload


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
               "identification_top1": payload["metrics"]["identification_top1"],
               "reid_top1": payload["metrics"]["reid_top1"]}
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
             "identification_top1": payload["metrics"]["identification_top1"],
             "reid_top1": payload["metrics"]["reid_top1"], "queries_used": payload["queries_used"],
             **payload["policy_cost"]} for unit, payload in [*tested, *measured]]
    _store(path, plan, "rows", rows)
    return rows


def _stored(path: Path, plan: AuditPlan, field: str) -> Any | None:
    """``field`` of a defence measurement stored at ``path`` for this same plan (None: none)."""
    if not path.is_file():
        return None
    stored = read_json(path)
    return stored[field] if stored.get("plan_fingerprint") == plan.fingerprint() else None


def _store(path: Path, plan: AuditPlan, field: str, value: Any) -> None:
    prepare_output_dir(path.parent, force=True)
    write_json(path, {"plan_fingerprint": plan.fingerprint(), field: value})


def _metrics_only(units: list[AttackUnit], plan: AuditPlan, subject: AuditSubject,
                  backend: Backend | None) -> list[dict[str, Any]]:
    """The payloads of extra attack units run as backend tasks, redacted (no images)."""
    documents = [{"origin": subject.origin, "unit": unit.as_dict(), "model_kind": plan.model_kind,
                  "settings": plan.settings, "redact": True} for unit in units]
    return [result["payload"] for result in (backend or LocalBackend()).map("audit-unit", documents)]


def _retrainable(subject: AuditSubject) -> bool:
    """A mirisk-trained model with its training data recorded (not an imported file)."""
    if subject.kind == "image":
        target = subject.target
        return (not target.provenance and target.architecture in ARCHITECTURES
                and "n_train_per_subject" in target.data and target.data.get("split") != "unknown")
    provenance = subject.target.training.get("data")
    return bool(subject.is_iwpc and subject.target.kind == "linear" and provenance and subject.sensitive in SENSITIVE)
