"""Audit plans: access levels, the attacks each model kind gets, config files."""

import pytest

from mirisk.audit.kinds import build_plan, read_config
from mirisk.audit.kinds.image import policy_units
from mirisk.audit.plan import parse_accesses
from mirisk.errors import MiriskError
from mirisk.threats import AccessLevel


def test_accesses_are_parsed_in_canonical_order():
    assert parse_accesses("label-only,white-box") == (AccessLevel.WHITE_BOX, AccessLevel.LABEL_ONLY)
    with pytest.raises(MiriskError, match="unknown access level.*gray-box"):
        parse_accesses("gray-box")


def test_image_plan_has_an_attack_per_threat_model_and_mi_face_from_two_starts():
    plan = build_plan("image", parse_accesses("white-box,scores,top-k,label-only"), 500, {"top_k": 5})
    assert [unit.id for unit in plan.units] == ["white-box-miface", "white-box-miface-grey", "scores-blackbox",
                                                "top5-blackbox", "label-only-repulsion"]
    assert plan.units[1].params["start"] == 0.5 and "start" not in plan.units[0].params
    assert plan.units[2].params["budget"] == 500 and plan.units[3].policy == "topk:5"
    assert "white-box-miface-grey" not in [unit.id for unit in build_plan("image", parse_accesses("scores"), None,
                                                                           {}).units]


def test_tabular_plan_skips_what_does_not_apply_and_says_why():
    plan = build_plan("tabular", parse_accesses("white-box,scores,top-k,label-only"), None, {})
    assert set(plan.skipped) == {"white-box", "top-k"} and "top-k is not modelled" in plan.skipped["top-k"]
    assert {unit.policy for unit in plan.units} == {"value", "band"}


def test_segmentation_plan_maps_access_levels_to_output_types():
    plan = build_plan("segmentation", parse_accesses("white-box,scores,top-k,label-only"), 40,
                      {"decoder_epochs": 50, "decoder_subjects": 20})
    assert [(unit.id, unit.params["output"]) for unit in plan.units] == [
        ("white-box-decoder", "logits"), ("scores-decoder", "probs"), ("label-only-decoder", "labels")]
    assert plan.units[1].params == {"output": "probs", "epochs": 50, "budget": 40}
    assert set(plan.skipped) == {"top-k"} and plan.settings["decoder_subjects"] == 20
    with pytest.raises(MiriskError, match="not segmenters"):
        build_plan("segmentation", parse_accesses("scores"), None, {"epsilons": [8.0]})
    with pytest.raises(MiriskError, match="at least 1"):
        build_plan("segmentation", parse_accesses("scores"), None, {"decoder_epochs": 0})


def test_settings_for_another_kind_of_model_are_refused_and_tested_policies_not_repeated():
    with pytest.raises(MiriskError, match="decoder_epochs, policies do not apply to a tabular model"):
        build_plan("tabular", parse_accesses("scores"), None, {"decoder_epochs": 5, "policies": ["round:2"]})
    plan = build_plan("image", parse_accesses("scores,top-k"), None, {"policies": ["scores", "topk:3", "round:1"]})
    assert [unit.id for unit in policy_units(plan, {})] == ["policy-round-1-blackbox"]


def test_fingerprint_follows_the_settings():
    accesses = parse_accesses("scores")
    assert build_plan("image", accesses, None, {}).fingerprint() == build_plan("image", accesses, None, {}).fingerprint()
    assert build_plan("image", accesses, None, {}).fingerprint() != build_plan("image", accesses, 10, {}).fingerprint()


def test_config_files_are_checked(tmp_path):
    good = tmp_path / "audit.toml"
    good.write_text('access = "scores"\nbudget = 100\nblackbox_iterations = 10\n')
    assert read_config(good)["budget"] == 100
    (tmp_path / "typo.toml").write_text("budgett = 100\n")
    with pytest.raises(MiriskError, match="unknown setting.*budgett"):
        read_config(tmp_path / "typo.toml")
    (tmp_path / "bad.toml").write_text("access = [\n")
    with pytest.raises(MiriskError, match="not valid TOML"):
        read_config(tmp_path / "bad.toml")
    with pytest.raises(MiriskError, match="not found"):
        read_config(tmp_path / "none.toml")
    with pytest.raises(MiriskError, match="at least 1"):
        build_plan("image", parse_accesses("scores"), 0, {})


def test_the_baseline_switch_defaults_on_and_must_be_a_boolean():
    assert build_plan("image", parse_accesses("white-box"), None, {}).settings["baseline"] is True
    assert build_plan("image", parse_accesses("white-box"), None, {"baseline": False}).settings["baseline"] is False
    with pytest.raises(MiriskError, match="baseline must be true or false"):
        build_plan("image", parse_accesses("white-box"), None, {"baseline": "no"})


@pytest.mark.parametrize(("kind", "config", "message"), [
    ("image", {"miface_iterations": "abc"}, "miface_iterations must be a whole number"),
    ("image", {"blackbox_iterations": 2.5}, "blackbox_iterations must be a whole number"),
    ("image", {"top_k": True}, "top_k must be a whole number"),
    ("image", {"epsilons": ["eight"]}, "epsilons must be a list of positive finite numbers"),
    ("image", {"epsilons": [float("nan")]}, "epsilons must be"),
    ("tabular", {"seed": -1}, "seed must be at least 0"),
    ("federated", {"gradient_iterations": "many"}, "gradient_iterations must be a whole number"),
])
def test_a_setting_of_the_wrong_type_is_one_line_error(kind, config, message):
    with pytest.raises(MiriskError, match=message):
        build_plan(kind, parse_accesses("white-box,scores"), None, config)
