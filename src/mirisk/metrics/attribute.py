"""How well a sensitive column was inferred: accuracy beside the baselines, and the
imbalance-aware measures (genotypes are far from uniform: most patients are CYP2C9 *1/*1)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import gmean
from sklearn.metrics import matthews_corrcoef, recall_score

from mirisk.metrics.intervals import wilson_interval


@dataclass(frozen=True)
class AttributeLeak:
    """One attack's inferences of a sensitive column for ``n`` people, beside three
    references on the same people: the prior only (``baseline_accuracy``), the ideal
    classifier trained on the training records, and the population classifier trained on
    the attacker's sample without the model. ``recall`` is per value present."""

    n: int
    accuracy: float
    baseline_accuracy: float
    ideal_accuracy: float
    population_accuracy: float
    mcc: float
    gmean: float
    recall: dict[str, float]

    @property
    def advantage(self) -> float:
        """Accuracy over the prior only."""
        return self.accuracy - self.baseline_accuracy

    @property
    def model_advantage(self) -> float:
        """Accuracy over the stronger of the prior and the population classifier: what the
        model adds to what an attacker infers without it."""
        return self.accuracy - max(self.baseline_accuracy, self.population_accuracy)

    @property
    def accuracy_ci(self) -> tuple[float, float]:
        return wilson_interval(round(self.accuracy * self.n), self.n)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "advantage": self.advantage}

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> AttributeLeak:
        return cls(**{key: document[key] for key in cls.__dataclass_fields__})


def attribute_metrics(
    truth: np.ndarray,
    predicted: np.ndarray,
    classes: tuple[str, ...],
    baseline: np.ndarray,
    ideal: np.ndarray,
    population: np.ndarray,
) -> AttributeLeak:
    """The leak of ``predicted`` against ``truth``, beside the ``baseline`` (prior-only),
    ``ideal`` and ``population`` predictions for the same people."""
    truth = np.asarray(truth, dtype=str)
    predicted = np.asarray(predicted, dtype=str)
    recalls = recall_score(truth, predicted, labels=list(classes), average=None, zero_division=0.0)
    present = np.isin(np.asarray(classes), truth)
    return AttributeLeak(
        n=int(len(truth)),
        accuracy=float(np.mean(truth == predicted)),
        baseline_accuracy=float(np.mean(truth == np.asarray(baseline, dtype=str))),
        ideal_accuracy=float(np.mean(truth == np.asarray(ideal, dtype=str))),
        population_accuracy=float(np.mean(truth == np.asarray(population, dtype=str))),
        mcc=float(matthews_corrcoef(truth, predicted)),
        gmean=float(gmean(recalls[present])) if present.any() else 0.0,
        recall={value: float(recall) for value, recall, here in zip(classes, recalls, present) if here},
    )
