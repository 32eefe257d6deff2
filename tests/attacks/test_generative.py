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
                                 dict(starts=8, candidates=4)])
def test_bad_parameters_are_refused_before_any_work(bad):
    with pytest.raises(MiriskError):
        GenerativeInversion(**bad)
