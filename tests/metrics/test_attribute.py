"""Attribute-inference metrics against scikit-learn and by hand."""

import numpy as np
import pytest
from sklearn.metrics import matthews_corrcoef

from mirisk.metrics.attribute import attribute_metrics


def test_metrics_by_hand():
    truth = np.array(["a", "a", "a", "b", "b", "c"])
    predicted = np.array(["a", "a", "b", "b", "a", "a"])
    metrics = attribute_metrics(truth, predicted, ("a", "b", "c"), baseline=np.full(6, "a"), ideal=truth,
                                population=predicted)
    assert metrics["accuracy"] == pytest.approx(3 / 6)
    assert metrics["baseline_accuracy"] == pytest.approx(3 / 6) and metrics["advantage"] == pytest.approx(0)
    assert metrics["ideal_accuracy"] == 1.0 and metrics["population_accuracy"] == metrics["accuracy"]
    assert metrics["mcc"] == pytest.approx(matthews_corrcoef(truth, predicted))
    assert metrics["recall"] == {"a": pytest.approx(2 / 3), "b": 0.5, "c": 0.0}
    assert metrics["gmean"] == 0.0  # one value never recovered: the G-mean says so, accuracy hides it


def test_values_absent_from_the_truth_are_left_out_of_recall_and_gmean():
    metrics = attribute_metrics(np.array(["a", "b"]), np.array(["a", "b"]), ("a", "b", "c"), np.array(["a", "a"]),
                                np.array(["a", "a"]), np.array(["b", "b"]))
    assert metrics["recall"] == {"a": 1.0, "b": 1.0} and metrics["gmean"] == 1.0
