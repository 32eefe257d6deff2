"""A defence recipe validates its settings and records only what it changes."""

import pytest

from mirisk.defences import DPSettings, TrainingDefences
from mirisk.errors import MiriskError


def test_records_only_the_chosen_defences():
    assert TrainingDefences().is_default and TrainingDefences().as_dict() == {}
    chosen = TrainingDefences(weight_decay=0.01, dropout=0.5, early_stopping=4, label_smoothing=-0.05)
    assert chosen.as_dict() == {"weight_decay": 0.01, "dropout": 0.5, "early_stopping_patience": 4,
                                "label_smoothing": -0.05}


@pytest.mark.parametrize(("settings", "message"), [
    ({"weight_decay": -1}, "weight decay"), ({"dropout": 1.0}, "dropout"), ({"early_stopping": 0}, "patience"),
    ({"label_smoothing": 2.0}, "label smoothing"), ({"dp": DPSettings(1.0), "early_stopping": 3}, "one or the other"),
])
def test_bad_recipes_are_named(settings, message):
    with pytest.raises(MiriskError, match=message):
        TrainingDefences(**settings)
