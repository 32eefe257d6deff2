"""The face attacks by name: built with their settings, and refused without what they need."""

import pytest

from mirisk.access.whitebox import WhiteBoxAccess
from mirisk.attacks.blackbox import ScoreBlackBox
from mirisk.attacks.generative import GenerativeInversion
from mirisk.attacks.labelonly import BoundaryRepulsion
from mirisk.attacks.miface import MIFace
from mirisk.errors import MiriskError
from mirisk.pipelines.face_attacks import build_face_attack, sweep_access
from mirisk.priors.store import load_prior


def test_each_name_builds_its_attack_with_its_settings():
    prior = load_prior()
    miface = build_face_attack("miface", 7, start=0.5)
    assert isinstance(miface, MIFace) and (miface.iterations, miface.start) == (7, 0.5)
    assert isinstance(build_face_attack("generative", 3, prior), GenerativeInversion)
    latent_scores = build_face_attack("generative-scores", 4, prior)
    assert isinstance(latent_scores, ScoreBlackBox) and latent_scores.basis is not None
    assert build_face_attack("blackbox", 4).basis is None  # the DCT basis of the model's input
    labels = build_face_attack("generative-labelonly", 5, prior)
    assert isinstance(labels, BoundaryRepulsion) and labels.init_scale == 1.0
    assert build_face_attack("labelonly", 5).init_scale == 3.0


def test_a_latent_attack_without_a_prior_or_an_unknown_name_is_refused():
    with pytest.raises(MiriskError, match="searches a face prior's latent space; none was given"):
        build_face_attack("generative-scores", 4)
    with pytest.raises(MiriskError, match="unknown face attack 'dlg'"):
        build_face_attack("dlg", 4)


def test_the_sweep_reaches_a_retrain_by_weights_or_full_scores_only():
    assert sweep_access("generative") is WhiteBoxAccess
    with pytest.raises(MiriskError, match="white-box and score attacks; 'labelonly' is neither"):
        sweep_access("labelonly")
