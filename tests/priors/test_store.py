"""Priors saved and loaded safely, the shipped one, and the check that a prior fits a model."""

import json
from dataclasses import replace

import pytest
import torch

from mirisk.data.faces import BUNDLED_PRIVATE, BUNDLED_PUBLIC, load_faces
from mirisk.errors import MiriskError
from mirisk.priors.gan import Discriminator, Generator, PriorShape
from mirisk.priors.store import (
    FacePrior, bundled_priors, check_prior_fits, check_prior_fits_faces, load_prior, save_prior,
)

SMALL = PriorShape(1, 112, 92, latent_dim=16, generator_width=8, discriminator_width=8)


def small_prior(people=("s21", "s22")):
    return FacePrior(Generator(SMALL).eval(), Discriminator(SMALL).eval(), {"data": {"people": list(people)}})


def test_public_and_private_specs_split_the_people():
    private, public = load_faces(BUNDLED_PRIVATE), load_faces(BUNDLED_PUBLIC)
    assert private.class_names == tuple(f"s{i:02d}" for i in range(1, 21)) and len(private.images) == 200
    assert public.class_names[0] == "s21" and set(private.class_names).isdisjoint(public.class_names)
    assert private.labels.max() == 19 and (private.subject_ids == "s01").sum() == 10


def test_a_saved_prior_loads_with_the_same_weights_and_a_tampered_one_is_refused(tmp_path):
    prior = small_prior()
    save_prior(prior, tmp_path / "prior")
    loaded = load_prior(tmp_path / "prior")
    saved, read = prior.generator.state_dict(), loaded.generator.state_dict()
    assert saved.keys() == read.keys() and all(torch.equal(saved[key], read[key]) for key in saved)
    latent = torch.randn(2, 16)  # channels-last convolutions: the same images up to float rounding
    assert torch.allclose(loaded.generator(latent), prior.generator(latent), atol=1e-6)
    assert loaded.people == ("s21", "s22")
    weights = tmp_path / "prior" / "prior.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x00")
    with pytest.raises(MiriskError, match="do not match the fingerprint"):
        load_prior(tmp_path / "prior")
    with pytest.raises(MiriskError, match="not a mirisk prior"):
        load_prior(tmp_path)


def test_a_prior_of_another_shape_or_of_the_models_own_people_is_refused(targets):
    target = targets["softmax"]  # all 40 AT&T people
    with pytest.raises(MiriskError, match="learnt from 2 of the model's own people"):
        check_prior_fits(small_prior(), target)
    other = FacePrior(Generator(replace(SMALL, height=64, width=64)), Discriminator(SMALL), {"data": {"people": []}})
    with pytest.raises(MiriskError, match=r"makes \(1, 64, 64\) images"):
        check_prior_fits(other, target)


def test_the_shipped_prior_loads_and_records_its_public_data():
    prior = load_prior()
    public = load_faces(BUNDLED_PUBLIC)
    assert prior.people == public.class_names and prior.metadata["data"]["fingerprint"] == public.fingerprint()
    assert prior.metadata["training"]["script"] == "scripts/train_face_prior.py"
    samples = prior.generator(torch.randn(4, prior.shape.latent_dim, generator=torch.Generator().manual_seed(0)))
    assert samples.shape == (4, 1, 112, 92) and samples.std() > 0.05  # not a blank or collapsed output
    assert json.loads(json.dumps(prior.metadata))  # plain JSON, nothing pickled


def test_a_shipped_prior_is_named_by_its_folder_and_an_unknown_one_is_refused():
    assert "bundled:att_faces_public" in bundled_priors()
    with pytest.raises(MiriskError, match="no shipped prior bundled:celeba; the package ships bundled:att_faces_public, "
                                          "bundled:lfw_public"):
        load_prior("bundled:celeba")


def test_a_prior_needs_images_of_32_pixels_or_more():
    with pytest.raises(MiriskError, match="at least 32 x 32 pixels; these are 1 x 4 x 4"):
        PriorShape(1, 4, 4)


def test_the_lfw_prior_loads_and_none_of_its_people_is_a_private_one():
    """Its people are LFW folder names, so a model of any of them is refused by name."""
    prior = load_prior("bundled:lfw_public")
    private = load_faces("bundled:lfw_private")
    assert (prior.shape.channels, prior.shape.height, prior.shape.width) == (3, 64, 64)
    assert len(prior.people) == 5591 and not set(prior.people) & set(private.class_names)
    assert prior.metadata["data"]["photos"] == 8909 and prior.metadata["training"]["steps_run"] == 14000
    with pytest.raises(MiriskError, match="learnt from 1 of the model's own people"):
        check_prior_fits_faces(prior, (3, 64, 64), (prior.people[0], *private.class_names))
