"""Attribute-inference metrics against scikit-learn and by hand."""

import numpy as np
import pytest
from sklearn.metrics import matthews_corrcoef

from mirisk.metrics.attribute import AttributeLeak, attribute_metrics


def test_metrics_by_hand():
    truth = np.array(["a", "a", "a", "b", "b", "c"])
    predicted = np.array(["a", "a", "b", "b", "a", "a"])
    metrics = attribute_metrics(truth, predicted, ("a", "b", "c"), baseline=np.full(6, "a"), ideal=truth,
                                population=predicted)
    assert metrics.accuracy == pytest.approx(3 / 6) and metrics.n == 6
    assert metrics.baseline_accuracy == pytest.approx(3 / 6) and metrics.advantage == pytest.approx(0)
    assert metrics.ideal_accuracy == 1.0 and metrics.population_accuracy == metrics.accuracy
    assert metrics.model_advantage == pytest.approx(0)
    assert metrics.mcc == pytest.approx(matthews_corrcoef(truth, predicted))
    assert metrics.recall == {"a": pytest.approx(2 / 3), "b": 0.5, "c": 0.0}
    assert metrics.gmean == 0.0  # one value never recovered: the G-mean says so, accuracy hides it
    low, high = metrics.accuracy_ci
    assert low < metrics.accuracy < high


def test_the_leak_round_trips_through_json_with_the_advantage_written_out():
    leak = attribute_metrics(np.array(["a", "b", "b"]), np.array(["a", "b", "a"]), ("a", "b"), np.array(["b"] * 3),
                             np.array(["a", "b", "b"]), np.array(["a", "a", "a"]))
    document = leak.to_json()
    assert document["advantage"] == pytest.approx(leak.accuracy - leak.baseline_accuracy)
    assert AttributeLeak.from_json(document) == leak


def test_values_absent_from_the_truth_are_left_out_of_recall_and_gmean():
    metrics = attribute_metrics(np.array(["a", "b"]), np.array(["a", "b"]), ("a", "b", "c"), np.array(["a", "a"]),
                                np.array(["a", "a"]), np.array(["b", "b"]))
    assert metrics.recall == {"a": 1.0, "b": 1.0} and metrics.gmean == 1.0
