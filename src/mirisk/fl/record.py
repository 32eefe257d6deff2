"""What an honest-but-curious server holds after a round: the weights it sent, the update it
got back and the metadata it knows. Stored framework-neutrally (safetensors + JSON), so an
update captured from another FL framework can be attacked too."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from mirisk.artifacts import prepare_output_dir, read_json, write_bytes, write_json
from mirisk.errors import MiriskError
from mirisk.models.architectures import build_model

FORMAT = "mirisk-fl-record/1"
PROTOCOLS = ("fedsgd", "fedavg")


def l2_norm(tensors: dict[str, torch.Tensor]) -> float:
    """The L2 norm of several tensors taken as one vector."""
    return float(torch.sqrt(sum((value.double() ** 2).sum() for value in tensors.values())))


@dataclass
class ServerRecord:
    """``weights``: the global model sent to the client(s); ``update``: the gradient (FedSGD)
    or new-minus-old weights (FedAvg) received, averaged over ``n_clients`` under secure
    aggregation. ``n_images`` (all clients' together), the local schedule and the model
    family are what a server knows in practice."""

    weights: dict[str, torch.Tensor]
    update: dict[str, torch.Tensor]
    protocol: str
    n_images: int
    architecture: str
    input_shape: tuple[int, int, int]
    n_classes: int
    local_steps: int = 1
    local_learning_rate: float = 0.0
    local_batch_size: int | None = None
    n_clients: int = 1
    defence: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise MiriskError(f"unknown protocol {self.protocol!r}; choose fedsgd or fedavg")
        if set(self.weights) != set(self.update):
            raise MiriskError("the update's tensors do not match the model's weights by name")
        for name, value in self.update.items():
            if value.shape != self.weights[name].shape:
                raise MiriskError(f"update {name} has shape {tuple(value.shape)}; the weights have "
                                  f"{tuple(self.weights[name].shape)}")
            if not torch.isfinite(value).all():
                raise MiriskError(f"update {name} holds NaN or infinite values")

    def module(self) -> torch.nn.Module:
        """The global model, built from its family and loaded with ``weights``."""
        module = build_model(self.architecture, self.input_shape, self.n_classes)
        module.load_state_dict(self.weights)
        return module.eval()

    def update_norm(self) -> float:
        """The L2 norm of the whole update (a guide for choosing a clipping norm)."""
        return l2_norm(self.update)

    def metadata(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if key not in ("weights", "update")}

    def save(self, directory: str | Path, force: bool = False) -> Path:
        directory = prepare_output_dir(directory, force=force)
        tensors = {**{f"weights.{k}": v for k, v in self.weights.items()}, **{f"update.{k}": v for k, v in self.update.items()}}
        write_bytes(directory / "record.safetensors", save({k: v.detach().contiguous() for k, v in tensors.items()}))
        write_json(directory / "record.json", {"format": FORMAT, **self.metadata()})
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> "ServerRecord":
        """Read a record folder; never unpickles."""
        directory = Path(directory)
        tensors_path, metadata_path = directory / "record.safetensors", directory / "record.json"
        if not tensors_path.is_file() or not metadata_path.is_file():
            raise MiriskError(f"{directory} is not a server record: expected record.safetensors and record.json")
        metadata = read_json(metadata_path)
        if not isinstance(metadata, dict) or metadata.pop("format", None) != FORMAT:
            raise MiriskError(f"{metadata_path} is not a {FORMAT} file")
        try:
            tensors = load_file(tensors_path)
        except SafetensorError as error:
            raise MiriskError(f"{tensors_path} is not a readable safetensors file: {error}") from None
        split = {part: {k.split(".", 1)[1]: v for k, v in tensors.items() if k.startswith(f"{part}.")}
                 for part in ("weights", "update")}
        try:
            return cls(**split, **{**metadata, "input_shape": tuple(metadata["input_shape"])})
        except (TypeError, KeyError) as error:
            raise MiriskError(f"{metadata_path} lacks or misnames a field: {error}") from None

    @classmethod
    def from_arrays(cls, weights: list[np.ndarray], update: list[np.ndarray], **metadata: Any) -> "ServerRecord":
        """From parameter lists in the model's ``state_dict`` order, as FL frameworks such as
        Flower exchange them (``ndarrays``); ``metadata`` as for the constructor."""
        names = list(build_model(metadata["architecture"], tuple(metadata["input_shape"]),
                                 metadata["n_classes"]).state_dict())
        if not len(weights) == len(update) == len(names):
            raise MiriskError(f"the {metadata['architecture']} model has {len(names)} tensors; got "
                              f"{len(weights)} weights and {len(update)} updates")
        return cls(weights={n: torch.as_tensor(np.asarray(w, dtype=np.float32)) for n, w in zip(names, weights, strict=True)},
                   update={n: torch.as_tensor(np.asarray(u, dtype=np.float32)) for n, u in zip(names, update, strict=True)},
                   **{**metadata, "input_shape": tuple(metadata["input_shape"])})
