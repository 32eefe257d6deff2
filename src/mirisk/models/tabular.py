"""Regression models on tabular records (the warfarin dosing models), trained by mirisk.

``linear``: least squares on the transformed target, as the IWPC 2009 pharmacogenetic
algorithm (sqrt of the weekly dose); with ``dp`` it is trained by DP-SGD instead and keeps
the same linear form. ``gbm``: gradient-boosted trees (scikit-learn), the non-linear one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.linear_model import LinearRegression
from torch import nn
from torch.utils.data import TensorDataset

from mirisk.data.tabular import TabularSchema
from mirisk.defences.dp_sgd import DPSettings, train_dp_sgd
from mirisk.errors import MiriskError
from mirisk.runtime import keeps_caller_generators, prepare_torch

KINDS = ("linear", "gbm")
# Per-patient gradients of the scaled squared error are ~0.2 in norm; clipping at 0.1 keeps
# most of the signal and cuts the noise tenfold against a norm of 1 (measured, BENCHMARKS.md).
TABULAR_DP_CLIP = 0.1
TRANSFORMS = ("sqrt", "identity")


def id_digest(patient_id: str) -> str:
    """Models record who they were trained on as SHA-256 digests, never as raw ids."""
    return hashlib.sha256(str(patient_id).encode("utf-8")).hexdigest()


@dataclass
class TabularModel:
    """A model on tabular records: a dosing-style regressor, or (imported only) a classifier
    whose schema names its ``target_classes``. Its schema, kind, parameters (``coefficients``
    and ``intercept`` for linear, a scikit-learn ``estimator`` for gbm, or for a model
    imported from its file a ``predictor`` from a table to outputs on the transformed scale,
    or to class probabilities), the target transform, how it was trained, its metrics, and
    digests of its training records' ids."""

    schema: TabularSchema
    kind: str
    target_transform: str = "sqrt"
    coefficients: np.ndarray | None = None
    intercept: float = 0.0
    estimator: Any = None
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    member_digests: frozenset[str] = frozenset()
    predictor: Callable[[pd.DataFrame], np.ndarray] | None = field(default=None, repr=False)

    @property
    def classifies(self) -> bool:
        return bool(self.schema.target_classes)

    def predict_transformed(self, features: np.ndarray) -> np.ndarray:
        """Model output on the transformed scale for an encoded feature matrix."""
        if self.kind == "linear":
            return features @ self.coefficients + self.intercept
        return np.asarray(self.estimator.predict(features), dtype=np.float64)

    def predict(self, table: pd.DataFrame) -> np.ndarray:
        """Predicted target for every row of ``table``: a number (e.g. weekly dose in mg), or
        a classifier's most probable class."""
        if self.classifies:
            return np.asarray(self.schema.target_classes, dtype=object)[self.predict_proba(table).argmax(axis=1)]
        if self.predictor is not None:
            self.schema.validate(table)
            return self.untransform(self.predictor(table))
        return self.untransform(self.predict_transformed(self.schema.encode(table)))

    def predict_proba(self, table: pd.DataFrame) -> np.ndarray:
        """A classifier's probability of each of ``target_classes``, [n, classes]."""
        if not self.classifies or self.predictor is None:
            raise MiriskError("only a classifier has class probabilities")
        self.schema.validate(table)
        return self.predictor(table)

    def class_index(self, labels: np.ndarray) -> np.ndarray:
        """Position of each label among a classifier's ``target_classes``."""
        codes = pd.Categorical(pd.Series(labels).astype(str), categories=list(self.schema.target_classes)).codes
        if (codes < 0).any():
            raise MiriskError(f"outcome value(s) outside the model's classes {list(self.schema.target_classes)}")
        return np.asarray(codes)

    def outcome_features(self, outcome: np.ndarray) -> np.ndarray:
        """A person's outcome as features for a learned attack: the transformed value, or
        a classifier's class one-hot, [n, d]."""
        if self.classifies:
            return np.eye(len(self.schema.target_classes))[self.class_index(outcome)]
        return self.transform(outcome)[:, None]

    def transform(self, target: np.ndarray) -> np.ndarray:
        return np.sqrt(np.clip(target, 0, None)) if self.target_transform == "sqrt" else np.asarray(target, float)

    def untransform(self, output: np.ndarray) -> np.ndarray:
        return np.clip(output, 0, None) ** 2 if self.target_transform == "sqrt" else output

    def is_member(self, ids: pd.Series) -> np.ndarray:
        """True for each id whose record was in the training set."""
        return np.array([id_digest(value) in self.member_digests for value in ids], dtype=bool)

    def recorded_outcome(self, table: pd.DataFrame) -> np.ndarray:
        """Each record's recorded target: a number, or a classifier's class label."""
        column = table[self.schema.target]
        return column.astype(str).to_numpy() if self.classifies else column.to_numpy(float)

    def fit_metrics(self, truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
        """How well the model fits ``truth``: dosing metrics for a regressor, accuracy for a classifier."""
        if self.classifies:
            return {"accuracy": float(np.mean(np.asarray(truth).astype(str) == np.asarray(predicted).astype(str)))}
        return dosing_metrics(np.asarray(truth, dtype=np.float64), predicted)


def dosing_metrics(true_dose: np.ndarray, predicted_dose: np.ndarray) -> dict[str, float]:
    """Mean absolute error and the IWPC's clinical measure: share within 20% of the true dose."""
    error = np.abs(predicted_dose - true_dose)
    return {"mae": float(error.mean()), "within_20pct": float(np.mean(error <= 0.2 * true_dose))}


@keeps_caller_generators
def train_tabular_regressor(
    train: pd.DataFrame,
    schema: TabularSchema,
    kind: str = "linear",
    dp: DPSettings | None = None,
    seed: int = 0,
    target_transform: str = "sqrt",
) -> TabularModel:
    """Fit a ``kind`` model on ``train`` (rows in ``schema``'s columns)."""
    prepare_torch(seed)
    if kind not in KINDS:
        raise MiriskError(f"unknown model kind {kind!r}; choose one of {', '.join(KINDS)}")
    if target_transform not in TRANSFORMS:
        raise MiriskError(f"unknown target transform {target_transform!r}; choose one of {', '.join(TRANSFORMS)}")
    if dp is not None and kind != "linear":
        raise MiriskError("differentially private training is available for the linear model only")
    schema.validate(train, (*schema.features, schema.target, schema.id_column), what="training data")
    model = TabularModel(schema=schema, kind=kind, target_transform=target_transform)
    features = schema.encode(train)
    target = model.transform(train[schema.target].to_numpy(dtype=np.float64))
    model.training = {"seed": seed, "n_train": len(train), "dp": None}
    if kind == "gbm":
        model.estimator = GradientBoostingRegressor(
            n_estimators=300, max_depth=3, learning_rate=0.05, subsample=0.8, random_state=seed
        ).fit(features, target)
    elif dp is None:
        fitted = LinearRegression().fit(features, target)
        model.coefficients, model.intercept = fitted.coef_.astype(np.float64), float(fitted.intercept_)
    else:
        model.coefficients, model.intercept, model.training["dp"] = _fit_linear_dp(features, target, model, dp, seed)
    model.member_digests = frozenset(map(id_digest, train[schema.id_column]))
    model.metrics["train"] = dosing_metrics(model.untransform(target), model.untransform(model.predict_transformed(features)))
    return model


def _fit_linear_dp(
    features: np.ndarray, target: np.ndarray, model: TabularModel, dp: DPSettings, seed: int
) -> tuple[np.ndarray, float, dict[str, Any]]:
    """DP-SGD on features and target scaled to [0, 1] by the schema's bounds (data-independent,
    so the scaling spends no privacy), mapped back to the original scale afterwards."""
    lower, upper = model.schema.encoded_bounds()
    span = upper - lower
    scale = float(model.transform(np.array([model.schema.target_bounds[1]]))[0])
    scaled_x = np.clip((features - lower) / span, 0.0, 1.0)
    scaled_y = np.clip(target / scale, 0.0, 1.0)
    generator = torch.Generator().manual_seed(seed)
    linear = nn.Linear(features.shape[1], 1)
    with torch.no_grad():
        linear.weight.copy_(torch.randn(linear.weight.shape, generator=generator) * 0.01)
        linear.bias.fill_(0.5)
    dataset = TensorDataset(torch.tensor(scaled_x, dtype=torch.float32), torch.tensor(scaled_y[:, None], dtype=torch.float32))
    record = train_dp_sgd(
        linear, dataset, nn.MSELoss(), dp, epochs=30, batch_size=256, learning_rate=1.0, seed=seed,
        momentum=0.5,
    )
    weight = linear.weight.detach().double().numpy()[0]
    coefficients = scale * weight / span
    intercept = scale * (float(linear.bias.detach()) - float(np.sum(weight * lower / span)))
    return coefficients, intercept, record
