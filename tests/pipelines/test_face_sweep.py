"""The face defence sweep's recipes and attacks (the sweep itself runs in tests/cli/test_sweep.py and the audit)."""

import pytest

from mirisk.errors import MiriskError
from mirisk.pipelines.face_sweep import (
    SweepAttack, classic_sweep_attacks, epsilon_recipes, face_sweep, generative_sweep_attacks, parse_recipes,
)


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


def test_a_sweep_attack_must_fit_its_level_and_its_prior():
    assert [attack.unit for attack in generative_sweep_attacks("bundled:att_faces_public")] == [
        "white-box-generative", "scores-generative"]
    with pytest.raises(MiriskError, match="at 'scores' is one of blackbox, generative-scores, got 'miface'"):
        SweepAttack("scores", "x", "miface", 10)
    with pytest.raises(MiriskError, match="the generative attack needs a face prior"):
        SweepAttack("white-box", "x", "generative", 10)
    with pytest.raises(MiriskError, match="the miface attack takes no face prior"):
        SweepAttack("white-box", "x", "miface", 10, prior="bundled:att_faces_public")
    with pytest.raises(MiriskError, match="one attack at each of white-box, scores"):
        face_sweep("bundled:att_faces", "softmax", epsilon_recipes((None,)), attacks=classic_sweep_attacks()[:1])
