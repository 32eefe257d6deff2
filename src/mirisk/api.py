"""The library entry: audit a model from Python, on objects or on files, as the CLI does.

    >>> import mirisk
    >>> from torch import nn
    >>> module = nn.Sequential(nn.Flatten(), nn.Linear(1 * 8 * 8, 3))
    >>> model = mirisk.ImageClassifier.from_module(module, input_shape=(1, 8, 8), classes=("ann", "bob", "cy"))
    >>> model.n_classes, model.architecture
    (3, 'module-Sequential')
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from torch import nn

from mirisk.audit.case import AuditSubject, SubjectOptions
from mirisk.audit.kinds import case_for, check_config, detect_case, load_subject, read_config
from mirisk.audit.plan import parse_accesses
from mirisk.audit.run import AuditReport, OnUnit, plan_for_subject, run_audit
from mirisk.data.faces import load_faces
from mirisk.data.images import ImageDataset
from mirisk.data.mri import SliceDataset
from mirisk.errors import MiriskError
from mirisk.execution.backends import Backend
from mirisk.fl.record import ServerRecord
from mirisk.models.imported import ImportSpec, module_target
from mirisk.models.loading import load_image_target
from mirisk.models.segmentation import SegmentationTarget
from mirisk.models.tabular import TabularModel
from mirisk.models.target import TargetModel
from mirisk.threats import AccessLevel, ThreatModel
from mirisk.validation import check_budget, check_switch

ThreatModels = str | AccessLevel | ThreatModel | Iterable[str | AccessLevel | ThreatModel] | None
ImageData = str | Path | ImageDataset | tuple[np.ndarray, np.ndarray] | None
AuditData = ImageData | pd.DataFrame | SliceDataset


class ImageClassifier:
    """Adapters that turn a user's image classifier into the target mirisk audits."""

    @staticmethod
    def from_module(module: nn.Module, *, input_shape: Sequence[int], classes: Sequence[str],
                    value_range: tuple[float, float] = (0.0, 1.0), outputs: str = "logits",
                    mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> TargetModel:
        """A torch module taking ``[N, *input_shape]`` images in ``value_range`` (normalised
        by ``mean``/``std`` first, if given) and returning ``outputs`` ("logits" or "probs")
        for each of ``classes``; checked to run. Its training split is unknown to mirisk, so
        every photo serves as the gallery and the baseline is chance."""
        spec = ImportSpec(_sequence(input_shape, "input_shape"), _sequence(value_range, "value_range"),
                          _sequence(classes, "classes"), outputs, None if mean is None else _sequence(mean, "mean"),
                          None if std is None else _sequence(std, "std"))
        return module_target(module, spec)

    @staticmethod
    def load(path: str | Path, **import_options: Any) -> TargetModel:
        """An image model folder or file (TorchScript, .pt2, ONNX, skops, safetensors); the
        options are :class:`~mirisk.models.imported.ImportSpec`'s fields."""
        return load_image_target(_path(path, "the model"), ImportSpec.from_options(import_options))


def _sequence(values: Any, name: str) -> tuple[Any, ...]:
    """A list or tuple argument as a tuple; anything else (None, a string, a number) refused."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise MiriskError(f"{name} must be a list or tuple, got {values!r}")
    return tuple(values)


def _path(value: Any, what: str) -> Path:
    """A path argument (str or Path); anything else refused."""
    if not isinstance(value, (str, Path)):
        raise MiriskError(f"{what} is given as a path (str or pathlib.Path), not {type(value).__name__}")
    return Path(value)



def load_model(path: str | Path, **import_options: Any) -> Any:
    """Any model the CLI audits: an image model folder or file (with ``import_options`` for
    a file), a tabular or segmentation model folder, or a federated round's server record."""
    case = detect_case(_path(path, "the model"))
    spec = ImportSpec.from_options(import_options) if import_options else None
    return case.load_model(Path(path), spec)


def accesses_of(threat_models: ThreatModels) -> list[str] | None:
    """Threat models given as strings ("white-box,scores"), access levels or ThreatModel
    objects, as the access names the plan reads; None: the kind's default."""
    if threat_models is None:
        return None
    if not isinstance(threat_models, (str, AccessLevel, ThreatModel, Iterable)):
        raise MiriskError(f"threat models are strings, AccessLevels or ThreatModels, not {threat_models!r}")
    items = [threat_models] if isinstance(threat_models, (str, AccessLevel, ThreatModel)) else list(threat_models)
    names: list[str] = []
    for item in items:
        if isinstance(item, ThreatModel):
            names.append(item.access.value)
        elif isinstance(item, AccessLevel):
            names.append(item.value)
        elif isinstance(item, str):
            names += [part.strip() for part in item.split(",") if part.strip()]
        else:
            raise MiriskError(f"a threat model is a string, an AccessLevel or a ThreatModel, not {type(item).__name__}")
    return names


def image_data(data: ImageData, target: TargetModel) -> ImageDataset:
    """Photos as the CLI takes them (a folder or ``bundled:...``), an ImageDataset, or
    ``(images, labels)`` arrays with the target's class names; default: the data it records."""
    if isinstance(data, ImageDataset):
        return data
    if data is not None and not isinstance(data, (str, Path, tuple)):
        raise MiriskError(f"an image classifier's data is a photo folder, bundled:..., an ImageDataset or "
                          f"(images, labels) arrays, not {type(data).__name__}")
    if isinstance(data, tuple):
        images, labels = (np.asarray(part) for part in data)
        if images.ndim != 4 or labels.ndim != 1 or len(images) != len(labels):
            raise MiriskError("arrays must be (images [N, C, H, W], labels [N])")
        return ImageDataset(images.astype(np.float32), labels.astype(np.int64), np.arange(len(labels)),
                            target.class_names, "arrays")
    return load_faces(data if data is not None else target.data.get("source"))


def audit_config(config: str | Path | dict[str, Any] | None) -> dict[str, Any]:
    """A TOML path or a dict of the same keys, checked."""
    if config is None:
        return {}
    if isinstance(config, dict):
        return check_config(dict(config))
    return read_config(_path(config, "the config"))


def subject_of(target: Any, data: AuditData, aux: str | Path | pd.DataFrame | None, sensitive: str | None,
               known: tuple[str, ...] | None) -> AuditSubject:
    """What :func:`audit` audits: a model given by its path (with its data as paths), or one
    of each kind in memory with its data."""
    if isinstance(target, (SegmentationTarget, TargetModel, ServerRecord)) and (aux is not None or sensitive or known):
        raise MiriskError(f"aux, sensitive and known apply to tabular models; this is a {type(target).__name__}")
    if isinstance(target, SegmentationTarget):
        if data is not None and not isinstance(data, SliceDataset):
            raise MiriskError("a segmenter in memory is audited on a SliceDataset (mirisk.data.mri.load_mri), or on "
                              "the slices it records (data=None)")
        return case_for("segmentation").subject(target, data)
    if isinstance(target, ServerRecord):
        if data is not None and not isinstance(data, (ImageDataset, str, Path)):
            raise MiriskError("a federated round in memory is replayed on stand-in images: an ImageDataset, a photo "
                              "folder or bundled:...")
        return case_for("federated").subject(target, data if isinstance(data, ImageDataset) or data is None
                                             else str(data))
    if isinstance(target, TabularModel):
        if not isinstance(data, pd.DataFrame):
            raise MiriskError("a tabular model in memory is audited on its records as a pandas DataFrame (data=...)")
        return case_for("tabular").subject(target, data, aux, sensitive, known)
    if isinstance(target, TargetModel):
        return case_for("image").subject(target, image_data(data, target))
    if isinstance(target, (str, Path)):
        if (data is not None and not isinstance(data, (str, Path))) or isinstance(aux, pd.DataFrame):
            raise MiriskError("a model given by its path takes its data as a path (or bundled:...) too")
        return load_subject(target, None if data is None else str(data), SubjectOptions(aux, sensitive, known))
    raise MiriskError(f"cannot audit a {type(target).__name__}: give a model path, a tabular model, a segmenter, a "
                      "federated round's record, or wrap a torch module with mirisk.ImageClassifier.from_module")


def audit(target: str | Path | TargetModel | TabularModel | SegmentationTarget | ServerRecord,
          data: AuditData = None, *,
          threat_models: ThreatModels = None, budget: int | None = None,
          config: str | Path | dict[str, Any] | None = None, out: str | Path | None = None, redact: bool = False,
          force: bool = False, backend: Backend | None = None, on_unit: OnUnit | None = None,
          aux: str | Path | pd.DataFrame | None = None, sensitive: str | None = None,
          known: Sequence[str] | None = None) -> AuditReport:
    """Audit ``target`` (a model path as the CLI takes it, or in memory: an image classifier,
    a tabular model with its records as a DataFrame, a segmenter, or a federated round's
    ``ServerRecord`` with its stand-in images) on ``data`` under
    ``threat_models`` (default: all that apply), as ``mirisk audit`` does. Without ``out``
    nothing is written (``report.save(folder)`` writes it later); with it, results are
    written as they finish and an unfinished audit there resumes. ``aux`` (a path, or a
    DataFrame for a model in memory), ``sensitive`` and ``known`` are for tabular models, as
    on the command line."""
    _check_arguments(budget, redact, force, out, backend, on_unit, known)
    accesses = accesses_of(threat_models)
    if accesses is not None:
        parse_accesses(accesses)  # an unknown one is named before anything is loaded
    settings = audit_config(config)
    columns = sensitive or settings.get("sensitive"), known or settings.get("known")
    subject = subject_of(target, data, aux, columns[0], None if columns[1] is None else tuple(columns[1]))
    plan = plan_for_subject(subject, settings, accesses, budget)
    return run_audit(plan, subject, None if out is None else Path(out), redact, force, on_unit=on_unit,
                     backend=backend)


def _check_arguments(budget: Any, redact: Any, force: Any, out: Any, backend: Any, on_unit: Any,
                     known: Any) -> None:
    """:func:`audit`'s arguments that need no model or data, checked before anything is loaded."""
    check_budget("the query budget", budget)
    check_switch("redact", redact)
    check_switch("force", force)
    if out is not None:
        _path(out, "out")
    if backend is not None and not isinstance(backend, Backend):
        raise MiriskError(f"backend is a mirisk.execution.backends backend (e.g. make_backend('ray')), not {backend!r}")
    if on_unit is not None and not callable(on_unit):
        raise MiriskError(f"on_unit must be a function of (unit, resumed), got {on_unit!r}")
    if known is not None and (isinstance(known, str) or not isinstance(known, Sequence)
                              or not all(isinstance(column, str) for column in known)):
        raise MiriskError(f"known must be a list of column names, got {known!r}")
