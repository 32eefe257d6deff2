"""The face defence sweep's recipes (the sweep itself runs in tests/cli/test_sweep.py and the audit)."""

import pytest

from mirisk.errors import MiriskError
from mirisk.pipelines.face_sweep import epsilon_recipes, parse_recipes


def test_recipes_parse_and_bad_ones_are_named():
    recipes = parse_recipes("weight-decay=0.01, label-smoothing=-0.05")
    assert [recipe.label for recipe in recipes] == ["weight-decay 0.01", "label-smoothing -0.05"]
    assert recipes[1].defences.label_smoothing == -0.05
    with pytest.raises(MiriskError, match="unknown defence"):
        parse_recipes("mixup=0.2")
    with pytest.raises(MiriskError, match="needs a number"):
        parse_recipes("dropout=lots")
    with pytest.raises(MiriskError, match="whole number"):
        parse_recipes("early-stopping=2.5")


def test_epsilon_recipes_label_each_budget():
    undefended, private = epsilon_recipes((None, 3.0))
    assert undefended.defences.is_default and undefended.epsilon is None
    assert private.label == "DP ε=3" and private.defences.dp.epsilon == 3.0
