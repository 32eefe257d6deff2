"""A trained target model with the facts an audit needs about it."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from mirisk.errors import MiriskError
from mirisk.runtime import convolution_layout
from mirisk.validation import check_value_range


@dataclass
class TargetModel:
    """The model under audit: its module plus architecture, input contract, classes, how it
    was trained (``training``), how well it does (``metrics``) and on which data (``data``:
    source, fingerprint, split seed and images per subject in training). ``gradients`` is
    False for a model that can only be queried (e.g. ONNX served by onnxruntime);
    ``provenance`` says where an imported model came from and how it was verified."""

    module: nn.Module
    architecture: str
    input_shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    value_range: tuple[float, float] = (0.0, 1.0)
    architecture_params: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    gradients: bool = True
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.value_range = check_value_range(tuple(self.value_range), "the model's value_range")
        if len(self.input_shape) != 3 or any(int(size) < 1 for size in self.input_shape):
            raise MiriskError(f"the model's input shape must be three positive sizes C,H,W, got {list(self.input_shape)}")
        if len(self.class_names) < 2:
            raise MiriskError(f"a classifier needs at least 2 classes, got {len(self.class_names)}")

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def frozen_network(self) -> nn.Module:
        """A copy of the network for attacks and serving: evaluation mode, no weight
        gradients, convolutions channels-last (:func:`mirisk.runtime.convolution_layout`)."""
        low, high = self.value_range
        example = low + (high - low) * torch.rand((1, *self.input_shape), generator=torch.Generator().manual_seed(0))
        return convolution_layout(copy.deepcopy(self.module).eval().requires_grad_(False), example)

    def metadata(self) -> dict[str, Any]:
        return {
            "architecture": self.architecture,
            "architecture_params": self.architecture_params,
            "input_shape": list(self.input_shape),
            "value_range": list(self.value_range),
            "class_names": list(self.class_names),
            "training": self.training,
            "metrics": self.metrics,
            "data": self.data,
        }
