"""Import a model trained elsewhere, without running untrusted code, and declare what it allows.

| format | how it is loaded | access it allows |
|---|---|---|
| TorchScript (zip with ``code/``) | ``torch.jit.load`` (TorchScript interpreter, no Python unpickling) | white-box |
| ``torch.export`` program (``.pt2``) | ``torch.export.load`` after refusing any pickled object in the archive, with every tensor load forced to ``weights_only`` | white-box |
| ONNX (``.onnx``) | onnxruntime | scores only (no gradients) |
| scikit-learn (``.skops``) | ``skops.io.load`` with an explicit trusted-type list | white-box for LogisticRegression and MLPClassifier (rebuilt in torch and verified equal), scores otherwise |
| safetensors + ``--arch module:factory`` | the user's own factory builds the module; weights from safetensors | white-box |

Anything else, and every pickle (``torch.save`` checkpoints, ``.pkl``, ``.joblib``), is refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mirisk.errors import MiriskError
from mirisk.models.target import TargetModel
from mirisk.validation import check_number, check_value_range

SAFE_FORMATS = ("TorchScript, a torch.export program (.pt2), ONNX (.onnx), scikit-learn saved with skops (.skops), "
                "or safetensors with --arch module:factory")
OUTPUTS = ("logits", "probs")
VERIFY_TOLERANCE = 1e-5


@dataclass(frozen=True)
class ImportSpec:
    """What the file may not say: input shape [C, H, W], value range, class names, whether it
    returns logits or probabilities, the normalisation it expects, and (safetensors) the
    factory that builds the architecture."""

    input_shape: tuple[int, ...] | None = None
    value_range: tuple[float, float] = (0.0, 1.0)
    classes: tuple[str, ...] | None = None
    outputs: str = "logits"
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    arch: str | None = None

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> ImportSpec:
        """The spec of keyword options or their JSON (lists for tuples); an unknown option is refused."""
        unknown = sorted(set(options) - set(cls.__dataclass_fields__))
        if unknown:
            raise MiriskError(f"unknown import option(s) {', '.join(unknown)}; known: "
                              f"{', '.join(cls.__dataclass_fields__)}")
        return cls(**{key: tuple(value) if isinstance(value, list) else value for key, value in options.items()})

    def __post_init__(self) -> None:
        if self.input_shape is not None and (not isinstance(self.input_shape, (tuple, list)) or len(self.input_shape) != 3
                                             or any(isinstance(v, bool) or not isinstance(v, int) or v < 1
                                                    for v in self.input_shape)):
            raise MiriskError(f"the input shape must be C,H,W (three positive whole numbers), got {self.input_shape!r}")
        if self.classes is not None:
            if isinstance(self.classes, str) or not all(isinstance(name, str) and name for name in self.classes):
                raise MiriskError(f"class names must be a sequence of non-empty strings, got {self.classes!r}")
            repeated = sorted({name for name in self.classes if list(self.classes).count(name) > 1})
            if repeated:
                raise MiriskError(f"class names must differ; repeated: {', '.join(repeated)}")
        check_value_range(tuple(self.value_range) if isinstance(self.value_range, (tuple, list)) else
                          (self.value_range,), "--value-range")
        for name in ("mean", "std"):
            values = getattr(self, name)
            if values is not None and (isinstance(values, str) or not isinstance(values, (tuple, list))):
                raise MiriskError(f"--{name} must be a sequence of numbers, got {values!r}")
            for value in values or ():
                check_number(f"--{name}", value)
        if self.outputs not in OUTPUTS:
            raise MiriskError(f"--outputs must be one of {', '.join(OUTPUTS)}, got {self.outputs!r}")
        if (self.mean is None) != (self.std is None):
            raise MiriskError("--mean and --std go together")
        if self.std is not None and any(value <= 0 for value in self.std):
            raise MiriskError("--std values must be positive")


def detect_format(path: Path) -> str:
    """The model file's format from its content; pickles and unknown files are refused."""
    if not path.is_file():
        raise MiriskError(f"model not found: {path}")
    with path.open("rb") as handle:
        head = handle.read(8)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
        if "schema.json" in names:
            return "skops"
        if any("/code/" in name for name in names) and any(name.endswith("constants.pkl") for name in names):
            return "torchscript"
        if any(name.endswith("archive_format") for name in names):
            return "export"
        if any(name.endswith("data.pkl") for name in names):
            raise MiriskError(f"refusing {path}: it is a torch.save checkpoint (a pickle), and unpickling can run "
                              f"arbitrary code. Supply {SAFE_FORMATS}")
    if path.suffix == ".onnx":
        return "onnx"
    if path.suffix == ".safetensors":
        return "safetensors"
    if head[:1] == b"\x80" or path.suffix in (".pkl", ".pickle", ".joblib", ".pt", ".pth", ".ckpt", ".bin"):
        raise MiriskError(f"refusing {path}: it is (or may be) a pickle, and unpickling can run arbitrary code. "
                          f"Supply {SAFE_FORMATS}")
    raise MiriskError(f"{path} is not a model format mirisk can load safely; supply {SAFE_FORMATS}")


class InputAdapter(nn.Module):
    """Attacks feed images [N, C, H, W] in the value range; this applies the model's
    normalisation, flattens for flat models, and turns probabilities into log-probabilities
    (so that a softmax downstream gives the model's probabilities back)."""

    def __init__(self, model: nn.Module, mean: tuple[float, ...] | None, std: tuple[float, ...] | None,
                 flatten: bool, outputs: str, fixed_mode: bool = False) -> None:
        super().__init__()
        self.model = model
        self.fixed_mode = fixed_mode
        self.flatten = flatten
        self.log_of_probabilities = outputs == "probs"
        shape = (1, -1, 1, 1)
        self.register_buffer("mean", None if mean is None else torch.tensor(mean, dtype=torch.float32).view(shape))
        self.register_buffer("std", None if std is None else torch.tensor(std, dtype=torch.float32).view(shape))

    def train(self, mode: bool = True) -> InputAdapter:
        """An exported program keeps the mode it was exported in (torch refuses to switch it)."""
        self.training = mode
        if not self.fixed_mode:
            self.model.train(mode)
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images if self.mean is None else (images - self.mean) / self.std
        out = self.model(x.flatten(1) if self.flatten else x)
        return torch.log(out.clamp_min(1e-12)) if self.log_of_probabilities else out


class QueryOnlyModule(nn.Module):
    """A model that can only be queried (onnxruntime, or scikit-learn's predict_proba):
    forward runs it on NumPy, outside autograd."""

    def __init__(self, predict, name: str) -> None:
        super().__init__()
        self._predict = predict
        self.name = name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.as_tensor(np.asarray(self._predict(x.detach().cpu().numpy().astype(np.float32))),
                                   dtype=torch.float32)


@contextlib.contextmanager
def _weights_only_loads():
    """Force every torch.load inside to weights_only=True (PyTorch's own switch)."""
    previous = os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD")
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("TORCH_FORCE_WEIGHTS_ONLY_LOAD")
        else:
            os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = previous


def _load_export(path: Path) -> nn.Module:
    """torch.export.load unpickles custom and opaque constants with plain pickle; refuse any
    archive holding one, and load the rest with weights-only tensor loading."""
    with zipfile.ZipFile(path) as archive:
        pickled = [name for name in archive.namelist()
                   if Path(name).name.startswith(("custom_obj_", "opaque_obj_")) or name.endswith(".pkl")]
    if pickled:
        raise MiriskError(f"refusing {path}: it holds pickled objects ({pickled[0]}), which would be unpickled")
    try:
        with _weights_only_loads():
            return torch.export.load(path).module()
    except Exception as error:  # torch raises many types for a damaged or foreign archive
        raise MiriskError(f"{path} is not a loadable torch.export program: {str(error).splitlines()[0]}") from None


def _load_onnx(path: Path) -> tuple[nn.Module, tuple[int, ...] | None]:
    import onnxruntime

    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own exception types
        raise MiriskError(f"{path} is not a loadable ONNX model: {str(error).splitlines()[0]}") from None
    entry = session.get_inputs()[0]
    dims = entry.shape[1:]
    shape = tuple(dims) if all(isinstance(d, int) for d in dims) else None
    return QueryOnlyModule(lambda x: session.run(None, {entry.name: x})[0], "onnxruntime"), shape


def _sklearn_as_torch(estimator: Any) -> nn.Module | None:
    """An equal torch module for a multinomial LogisticRegression or an MLPClassifier."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    def linear(weight: np.ndarray, bias: np.ndarray) -> nn.Linear:
        layer = nn.Linear(weight.shape[0], weight.shape[1])
        with torch.no_grad():
            layer.weight.copy_(torch.as_tensor(weight.T, dtype=torch.float32))
            layer.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
        return layer

    if isinstance(estimator, LogisticRegression) and len(estimator.classes_) > 2:
        return linear(estimator.coef_.T, estimator.intercept_)
    if isinstance(estimator, MLPClassifier) and estimator.out_activation_ == "softmax":
        activation = {"relu": nn.ReLU(), "logistic": nn.Sigmoid(), "tanh": nn.Tanh(), "identity": nn.Identity()}
        layers: list[nn.Module] = []
        for index, (weight, bias) in enumerate(zip(estimator.coefs_, estimator.intercepts_)):
            layers.append(linear(weight, bias))
            if index < len(estimator.coefs_) - 1:
                layers.append(activation[estimator.activation])
        return nn.Sequential(*layers)
    return None


def _load_skops(path: Path, spec: ImportSpec) -> tuple[nn.Module, str, dict[str, Any]]:
    from mirisk.models.tabular_store import load_skops_estimator

    estimator = load_skops_estimator(path, require="predict_proba")
    converted = _sklearn_as_torch(estimator)
    if converted is not None:
        low, high = spec.value_range
        probe = torch.rand(16, int(np.prod(spec.input_shape or (estimator.n_features_in_,)))) * (high - low) + low
        expected = estimator.predict_proba(probe.numpy())
        got = torch.softmax(converted(probe), dim=1).detach().numpy()
        gap = float(np.abs(expected - got).max())
        if gap <= VERIFY_TOLERANCE:
            return converted, "logits", {"conversion": f"{type(estimator).__name__} rebuilt in torch",
                                         "verified_max_difference": gap}
        note = {"conversion": f"rebuilt {type(estimator).__name__} differed by {gap:.2g}; served as scores only"}
    else:
        note = {"conversion": f"no torch equivalent for {type(estimator).__name__}; served as scores only"}
    return QueryOnlyModule(estimator.predict_proba, "scikit-learn"), "probs", note


def _load_safetensors(path: Path, spec: ImportSpec) -> nn.Module:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not spec.arch or ":" not in spec.arch:
        raise MiriskError("a safetensors file needs --arch module:factory, naming your code that builds the model")
    module_name, factory_name = spec.arch.split(":", 1)
    try:
        factory = getattr(importlib.import_module(module_name), factory_name)
    except (ImportError, AttributeError) as error:
        raise MiriskError(f"--arch {spec.arch}: cannot import it ({error})") from None
    module = factory()
    try:
        module.load_state_dict(load_file(path), strict=True)
    except (SafetensorError, OSError) as error:
        raise MiriskError(f"{path} is not a readable safetensors file: {error}") from None
    except RuntimeError as error:
        raise MiriskError(f"{path} does not match --arch {spec.arch}: {str(error).splitlines()[0]}") from None
    return module


@dataclass(frozen=True)
class LoadedFile:
    """A model file loaded safely: the module, its format, what it outputs, whether autograd
    runs through it, the input shape (given or read) and its provenance (with notes on how
    it was loaded)."""

    module: nn.Module
    format: str
    outputs: str
    gradients: bool
    input_shape: tuple[int, ...]
    provenance: dict[str, Any]


def load_model_file(path: str | Path, spec: ImportSpec) -> LoadedFile:
    """Load ``path`` in any safe format (nothing unpickled); its input shape must be known."""
    path = Path(path)
    fmt = detect_format(path)
    outputs, gradients, notes, shape = spec.outputs, True, {}, spec.input_shape
    if fmt == "torchscript":
        try:
            module = torch.jit.load(str(path), map_location="cpu")
        except RuntimeError as error:
            raise MiriskError(f"{path} is not a loadable TorchScript file: {str(error).splitlines()[0]}") from None
    elif fmt == "export":
        module = _load_export(path)
    elif fmt == "onnx":
        module, onnx_shape = _load_onnx(path)
        gradients, shape = False, shape or onnx_shape
    elif fmt == "skops":
        module, outputs, notes = _load_skops(path, spec)
        gradients = not isinstance(module, QueryOnlyModule)
    else:
        module = _load_safetensors(path, spec)
    if shape is None:
        raise MiriskError(f"{path} does not say its input shape; pass --input-shape C,H,W")
    provenance = {"format": fmt, "file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                  "outputs": outputs, "gradients": gradients, **notes}
    return LoadedFile(module, fmt, outputs, gradients, tuple(shape), provenance)


def import_model(path: str | Path, spec: ImportSpec) -> TargetModel:
    """Load ``path`` as a target with its capabilities declared; check it runs on the
    declared input shape and that the class names fit its outputs."""
    loaded = load_model_file(path, spec)
    return verified_target(loaded.module, replace(spec, input_shape=loaded.input_shape, outputs=loaded.outputs),
                           f"imported-{loaded.format}", loaded.provenance, str(path), gradients=loaded.gradients,
                           flatten=loaded.format == "skops", fixed_mode=loaded.format == "export")


def verified_target(module: nn.Module, spec: ImportSpec, architecture: str, provenance: dict[str, Any], name: str,
                    gradients: bool = True, flatten: bool = False, fixed_mode: bool = False) -> TargetModel:
    """``module`` behind its input adapter, checked to run on ``spec``'s input shape and to
    give one output per class name; its training split is unknown."""
    shape = spec.input_shape
    adapter = InputAdapter(module, spec.mean, spec.std, flatten=flatten, outputs=spec.outputs,
                           fixed_mode=fixed_mode).eval().requires_grad_(False)
    low, high = spec.value_range
    try:
        with torch.no_grad():
            probe = adapter(torch.full((2, *shape), (low + high) / 2))
    except Exception as error:  # the user's model may raise anything on a wrong shape
        raise MiriskError(f"{name} does not run on inputs of shape {list(shape)}: {str(error).splitlines()[0]}") from None
    if probe.ndim != 2:
        raise MiriskError(f"{name} returns outputs of shape {list(probe.shape)}; a classifier returns [N, classes]")
    if not torch.isfinite(probe).all():
        raise MiriskError(f"{name} returns non-finite outputs (NaN or inf) on a plain input")
    classes = spec.classes or tuple(str(i) for i in range(probe.shape[1]))
    if len(classes) != probe.shape[1]:
        raise MiriskError(f"{len(classes)} class names for a model with {probe.shape[1]} outputs")
    return TargetModel(
        module=adapter, architecture=architecture, input_shape=tuple(shape), class_names=tuple(classes),
        value_range=(float(low), float(high)), gradients=gradients, data={"split": "unknown"}, provenance=provenance,
    )


def module_target(module: nn.Module, spec: ImportSpec) -> TargetModel:
    """A torch module in memory as an image target (white-box: its gradients are used)."""
    if not isinstance(module, nn.Module):
        raise MiriskError(f"expected a torch.nn.Module, got {type(module).__name__}")
    if spec.input_shape is None:
        raise MiriskError("give the module's input_shape (C, H, W)")
    provenance = {"format": "module", "class": type(module).__name__, "outputs": spec.outputs, "gradients": True}
    return verified_target(module, spec, f"module-{type(module).__name__}", provenance, type(module).__name__)
