"""White-box inversion in the shipped prior's latent space, judged independently."""

from dataclasses import replace

import pytest
import torch

from mirisk.access.whitebox import WhiteBoxAccess
from mirisk.attacks.contract import seeded
from mirisk.attacks.generative import GenerativeInversion
from mirisk.data.faces import BUNDLED_PRIVATE, load_faces
from mirisk.errors import MiriskError
from mirisk.pipelines.faces import configured_miface, measure_face_reconstructions, train_face_target
from mirisk.priors.store import check_prior_fits, load_prior

FEW_STEPS = GenerativeInversion(iterations=60, starts=4)


@pytest.fixture(scope="module")
def private_cnn():
    return train_face_target("cnn", load_faces(BUNDLED_PRIVATE))


@pytest.fixture(scope="module")
def prior():
    return load_prior()


def attack(model, prior):
    return replace(FEW_STEPS, prior=prior).run(WhiteBoxAccess(model), torch.arange(model.n_classes),
                                               generator=seeded(0))


def test_the_prior_makes_faces_the_target_is_confident_in_where_mi_face_makes_none(private_cnn, prior):
    """What the latent-space search does reach on the CNN: faces (detected by the judge's
    detector) that the target assigns to the person. It does not yet beat its label-permuted
    baseline under the judge (docs/generative.md), so that is not claimed here."""
    private = load_faces(BUNDLED_PRIVATE)
    check_prior_fits(prior, private_cnn)  # the shipped prior knows none of s01-s20
    result = attack(private_cnn, prior)
    generative = measure_face_reconstructions(private_cnn, private, result).metrics["independent"]
    pixels = configured_miface(iterations=300).run(WhiteBoxAccess(private_cnn), torch.arange(private_cnn.n_classes))
    mi_face = measure_face_reconstructions(private_cnn, private, pixels).metrics["independent"]
    assert generative["face_rate"] >= 0.7 and mi_face["face_rate"] <= 0.1  # measured 85% against 0%
    assert float((1 - result.final_cost).mean()) >= 0.9  # the target's confidence in its pick (measured 0.97)
    assert result.reconstructions.shape == (20, 1, 112, 92) and result.attack == "generative"


def test_the_same_seed_gives_the_same_reconstructions(private_cnn, prior):
    small = GenerativeInversion(iterations=3, starts=2, prior=prior)
    runs = [small.run(WhiteBoxAccess(private_cnn), [0, 1], generator=seeded(5)) for _ in range(2)]
    assert torch.equal(runs[0].reconstructions, runs[1].reconstructions)


@pytest.mark.parametrize("bad", [dict(learning_rate=float("nan")), dict(prior_weight=float("inf")),
                                 dict(iterations=0), dict(identity="dice"), dict(latent_clip=-1.0),
                                 dict(starts=8, candidates=4), dict(feature_steps=-1),
                                 dict(feature_radius=0.0), dict(feature_radius=float("nan"))])
def test_bad_parameters_are_refused_before_any_work(bad):
    with pytest.raises(MiriskError):
        GenerativeInversion(**bad)


def test_the_feature_search_stays_within_its_radius_of_the_latent_search(private_cnn, prior):
    """IF-GMI's phase moves the first feature map at most ``feature_radius`` times its mean
    magnitude (and keeps it non-negative), so the image stays near the latent search's face;
    with no feature steps the attack is the latent search alone."""
    access, people = WhiteBoxAccess(private_cnn), [0, 1]
    latent_only = GenerativeInversion(iterations=3, starts=1, candidates=2, prior=prior)
    with_features = replace(latent_only, feature_steps=4, feature_radius=0.25)
    first = latent_only.run(access, people, generator=seeded(2))
    second = with_features.run(access, people, generator=seeded(2))
    assert not torch.equal(first.reconstructions, second.reconstructions)
    assert second.iterations.tolist() == [7, 7] and second.settings["feature_steps"] == 4
    bounded = replace(with_features, feature_radius=1e-6).run(access, people, generator=seeded(2))
    assert torch.allclose(bounded.reconstructions, first.reconstructions, atol=1e-3)
