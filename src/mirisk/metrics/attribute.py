"""How well a sensitive column was inferred: accuracy beside the baselines, and the
imbalance-aware measures (genotypes are far from uniform: most patients are CYP2C9 *1/*1)."""

from __future__ import annotations

import numpy as np
from scipy.stats import gmean
from sklearn.metrics import matthews_corrcoef, recall_score


def attribute_metrics(
    truth: np.ndarray,
    predicted: np.ndarray,
    classes: tuple[str, ...],
    baseline: np.ndarray,
    ideal: np.ndarray,
    population: np.ndarray,
) -> dict[str, object]:
    """Accuracy beside three references on the same people: the prior-only baseline, the
    ideal classifier (trained on the training records) and the population classifier (trained
    on the attacker's sample, without the model); the advantage over the baseline, MCC,
    G-mean of the recalls present, recall per value."""
    truth = np.asarray(truth, dtype=str)
    predicted = np.asarray(predicted, dtype=str)
    recalls = recall_score(truth, predicted, labels=list(classes), average=None, zero_division=0.0)
    present = np.isin(np.asarray(classes), truth)
    accuracy = float(np.mean(truth == predicted))
    baseline_accuracy = float(np.mean(truth == np.asarray(baseline, dtype=str)))
    return {
        "n": int(len(truth)),
        "accuracy": accuracy,
        "baseline_accuracy": baseline_accuracy,
        "ideal_accuracy": float(np.mean(truth == np.asarray(ideal, dtype=str))),
        "population_accuracy": float(np.mean(truth == np.asarray(population, dtype=str))),
        "advantage": accuracy - baseline_accuracy,
        "mcc": float(matthews_corrcoef(truth, predicted)),
        "gmean": float(gmean(recalls[present])) if present.any() else 0.0,
        "recall": {value: float(recall) for value, recall, here in zip(classes, recalls, present) if here},
    }
