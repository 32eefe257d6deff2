"""Run an audit plan's attacks: load the model and its data, and run each attack unit once
(a finished unit is found on disk and not re-run), here or as backend tasks."""

from __future__ import annotations

import base64
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
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
from mirisk.audit.plan import AttackUnit, AuditPlan
from mirisk.audit.segmentation import load_segmentation_data, run_decoder_unit, segmentation_source
from mirisk.data.faces import load_faces
from mirisk.data.images import ImageDataset
from mirisk.data.iwpc import IWPC_SCHEMA
from mirisk.data.mri import SliceDataset, load_neighbour_slices
from mirisk.errors import MiriskError
from mirisk.execution.backends import Backend, LocalBackend
from mirisk.execution.tasks import portable_path
from mirisk.figures import reconstruction_grid
from mirisk.fl.record import ServerRecord
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
from mirisk.pipelines.face_baseline import run_baseline
from mirisk.pipelines.faces import LINEUP_HEADING, configured_miface, measure_face_reconstructions, target_split
from mirisk.pipelines.iwpc import attack_tables, task_columns
from mirisk.pipelines.matrix import policy_cost

UNIT_RESULT = "result.json"
UNIT_SCHEMA = 2  # 2: face units judged by the independent recogniser, beside their label-permuted baseline


@dataclass
class AuditSubject:
    """The model under audit and the data the attacks are measured on."""

    kind: str
    target: TargetModel | TabularRegressor | SegmentationTarget | ServerRecord
    dataset: ImageDataset | None = None
    slices: SliceDataset | None = None
    neighbour_slices: SliceDataset | str | None = None  # segmentation: each subject's neighbouring slices, or why none
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
        return AuditSubject(kind, target, slices=load_segmentation_data(target, data),
                            neighbour_slices=load_neighbour_slices(segmentation_source(target, data)), origin=origin)
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
    if (payload.get("audit_unit") == unit.as_dict() and payload.get("plan_fingerprint") == fingerprint
            and payload.get("unit_schema") == UNIT_SCHEMA):
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
        payload.update(audit_unit=unit.as_dict(), plan_fingerprint=fingerprint, unit_schema=UNIT_SCHEMA)
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
            payload = run_decoder_unit(unit, settings, subject.target, subject.slices, Path(scratch), redact,
                                       subject.neighbour_slices)
        elif model_kind == "federated":
            payload = run_gradient_unit(unit, settings, subject.target, subject.dataset, Path(scratch), redact)
        else:
            run = _run_image_unit if model_kind == "image" else _run_tabular_unit
            payload = run(unit, settings, subject, Path(scratch), redact)
        return payload, {path.name: path.read_bytes() for path in Path(scratch).iterdir() if path.is_file()}


def _run_image_unit(unit: AttackUnit, settings: dict[str, Any], subject: AuditSubject, folder: Path,
                    redact: bool) -> dict[str, Any]:
    target, dataset, seed = subject.target, subject.dataset, settings["seed"]
    if unit.attack == "miface":
        miface = configured_miface(iterations=unit.params["iterations"])

        def attack_model(model: TargetModel):
            return miface.run(WhiteBoxAccess(model), torch.arange(model.n_classes))

        result = attack_model(target)
    else:
        attack = (ScoreBlackBox(iterations=unit.params["iterations"]) if unit.attack == "blackbox"
                  else BoundaryRepulsion(iterations=unit.params["iterations"]))
        basis = dct_basis(target.input_shape)
        oracle: QueryAccess
        if unit.id.startswith("gateway-"):
            if subject.remote is None:
                raise MiriskError(f"unit {unit.id} attacks a live gateway; give --endpoint and --api-key")
            oracle = subject.remote
        else:
            oracle = Oracle(target, parse_policy(unit.policy), budget=unit.params.get("budget"))
        result = attack.run(oracle, torch.arange(target.n_classes), basis, seed=seed)
        served = oracle.policy.spec

        def attack_model(model: TargetModel):
            twin_oracle = Oracle(model, parse_policy(served), budget=unit.params.get("budget"))
            return attack.run(twin_oracle, torch.arange(model.n_classes), basis, seed=seed)

    baseline = run_baseline(target, dataset, attack_model, seed) if settings.get("baseline", True) else None
    report = measure_face_reconstructions(target, dataset, result, seed=seed, baseline=baseline)
    payload = report.payload
    if unit.id.startswith("gateway-"):
        payload["deployment"] = {**settings["deployment"], "stopped_by_gateway": sorted(
            {reason for reason in result.stop_reasons if reason.startswith("gateway-")})}
    if unit.policy is not None:
        payload["policy_cost"] = policy_cost(target, dataset, unit.policy)
    if not redact:
        ranks = report.metrics["per_target"]["independent_rank"]
        titles = [f"{target.class_names[i]} (judge rank {rank})" for i, rank in enumerate(ranks)]
        write_bytes(folder / "reconstructions.png", reconstruction_grid(
            report.originals, result.reconstructions.numpy(), titles,
            heading=f"{unit.id}: top: a training photo; bottom: the reconstruction (rank of the true person)"))
        write_bytes(folder / "lineup.png", report.lineup_png(target.class_names, f"{unit.id}: {LINEUP_HEADING}"))
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
