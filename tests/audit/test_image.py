"""The image case's plan with the generative attacks: run where the face prior fits the
model, untested with the reason where it does not, and never quietly dropped."""

import pytest

from mirisk.api import audit
from mirisk.audit.kinds import case_for
from mirisk.audit.kinds.image import policy_units, sweep_attacks
from mirisk.audit.run import plan_for_subject
from mirisk.data.faces import BUNDLED_PRIVATE, load_faces
from mirisk.errors import MiriskError
from mirisk.pipelines.faces import attacked_people, train_face_target
from mirisk.priors.store import BUNDLED_PRIOR
from tests.audit.test_verdict import image_metrics

FEW_STEPS = {"miface_iterations": 3, "blackbox_iterations": 2, "labelonly_iterations": 2, "generative_iterations": 2,
             "generative_scores_iterations": 2, "generative_labelonly_iterations": 2, "epsilons": [],
             "baseline": False, "policies": []}


@pytest.fixture(scope="module")
def private_faces():
    return load_faces(BUNDLED_PRIVATE)


@pytest.fixture(scope="module")
def private_softmax(private_faces):
    return train_face_target("softmax", private_faces)


def test_the_generative_attacks_run_where_the_prior_fits(private_softmax, private_faces):
    """On a seeded sample of 5 of the 20 people (``people = 5``), the same for every attack."""
    report = audit(private_softmax, private_faces, threat_models="white-box,scores,label-only", budget=3000,
                   config=FEW_STEPS | {"people": 5})
    sample = attacked_people(5, 20, 0).tolist()
    for result in report.results.values():
        assert result.payload["metrics"]["per_target"]["label"] == sample
    assert {private_faces.class_names[i] for i in sample} >= {row["person"] for row in report.document["at_risk"]}
    attacks = {attack["id"]: attack for attack in report.document["attacks"]}
    assert {"white-box-generative", "scores-generative", "label-only-generative"} <= set(attacks)
    assert "GMI" in attacks["white-box-generative"]["citation"]
    assert "BREP-MI" in attacks["label-only-generative"]["citation"]
    assert all(attacks[unit]["queries_used"] <= 3000 for unit in ("scores-generative", "label-only-generative"))
    assert report.document["attacks_untested"] == {}


def test_a_model_of_the_priors_own_people_leaves_them_untested_with_the_reason(targets, faces):
    subject = case_for("image").subject(targets["softmax"], faces)
    plan = plan_for_subject(subject, FEW_STEPS, "white-box,scores")
    assert [unit.attack for unit in plan.units] == ["miface", "miface", "blackbox"]
    reason = plan.settings["untested"]["generative"]
    assert "20 of the model's own people" in reason and "mirisk train prior" in reason


def test_a_sample_larger_than_the_models_people_is_refused(private_softmax, private_faces):
    subject = case_for("image").subject(private_softmax, private_faces)
    with pytest.raises(MiriskError, match="people = 21, but the model knows only 20 people"):
        plan_for_subject(subject, FEW_STEPS | {"people": 21}, "white-box")
    with pytest.raises(MiriskError, match="people must be at least 1"):
        plan_for_subject(subject, FEW_STEPS | {"people": 0}, "white-box")


def test_switching_them_off_is_said_and_a_prior_that_is_not_one_is_refused(private_softmax, private_faces, tmp_path):
    subject = case_for("image").subject(private_softmax, private_faces)
    plan = plan_for_subject(subject, FEW_STEPS | {"generative": False}, "white-box")
    assert plan.settings["untested"]["generative"].startswith("switched off")
    with pytest.raises(MiriskError, match="is not a mirisk prior"):
        plan_for_subject(subject, FEW_STEPS | {"prior": str(tmp_path)}, "white-box")


def test_the_defences_are_measured_by_the_attack_that_leaked_most_at_each_level(private_softmax, private_faces):
    """The DP retrains and the extra output policies take the strongest unit of their access
    level (on hand-made results), its settings included; the pixel-space pair stands in
    where the plan has no unit at a level."""
    subject = case_for("image").subject(private_softmax, private_faces)
    plan = plan_for_subject(subject, FEW_STEPS | {"policies": ["round:1"]}, "white-box,scores,label-only", budget=900)
    judged = {"white-box-miface": 0.05, "white-box-miface-grey": 0.2, "white-box-generative": 0.1,
              "scores-blackbox": 0.1, "scores-generative": 0.3, "label-only-repulsion": 0.1,
              "label-only-generative": 0.1}
    results = {unit_id: {"metrics": image_metrics(judge)} for unit_id, judge in judged.items()}
    white_box, scores = sweep_attacks(plan, results)
    assert (white_box.unit, white_box.attack, white_box.start, white_box.prior) == (
        "white-box-miface-grey", "miface", 0.5, None)
    assert (scores.unit, scores.attack, scores.iterations, scores.prior) == (
        "scores-generative", "generative-scores", 2, BUNDLED_PRIOR)
    [through_rounding] = policy_units(plan, results)
    assert (through_rounding.id, through_rounding.policy) == ("policy-round-1-generative-scores", "round:1")
    assert through_rounding.params == {"iterations": 2, "prior": BUNDLED_PRIOR, "budget": 900}
    tie = {**results, "scores-blackbox": {"metrics": image_metrics(0.3)}}
    assert sweep_attacks(plan, tie)[1].unit == "scores-blackbox"  # a tie goes to the first planned
    labels_only = plan_for_subject(subject, FEW_STEPS, "label-only")
    assert [attack.unit for attack in sweep_attacks(labels_only, {})] == ["white-box-miface", "scores-blackbox"]


def test_a_dp_retrain_is_attacked_in_the_latent_space_when_that_leaked_most(private_softmax, private_faces):
    """An audit with one DP-SGD retrain: the retrain's numbers name the attack the audit's
    own results chose, and the recommendation compares that attack before and after."""
    report = audit(private_softmax, private_faces, threat_models="white-box,scores",
                   config=FEW_STEPS | {"people": 4, "epsilons": [50.0]})
    payloads = {unit_id: result.payload for unit_id, result in report.results.items()}
    expected = sweep_attacks(report.plan, payloads)
    [point] = report.defences["dp_sweep"]
    assert [point[attack.access]["attack"] for attack in expected] == [attack.unit for attack in expected]
    [advice] = [item for item in report.document["recommendations"] if "DP-SGD at epsilon 50" in item["action"]]
    assert all(f"({attack.unit})" in advice["effect"] for attack in expected)
