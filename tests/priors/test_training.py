"""The face prior's networks, augmentation and resumable training."""

import pytest
import torch
from safetensors.torch import load_file

from mirisk.errors import MiriskError
from mirisk.priors.augment import diff_augment
from mirisk.priors.gan import Discriminator, Generator, PriorShape
from mirisk.priors.training import CHECKPOINT_WEIGHTS, PriorTraining, prior_from_checkpoint, train_prior

SMALL = PriorShape(1, 112, 92, latent_dim=16, generator_width=8, discriminator_width=8)


def test_the_generator_makes_images_of_the_model_shape_in_range():
    images = Generator(SMALL).eval()(torch.randn(3, 16))
    assert images.shape == (3, 1, 112, 92) and 0 <= images.min() and images.max() <= 1
    half = Generator(SMALL).forward_half(torch.randn(2, 16))
    assert half.shape == (2, 1, 56, 46) and Discriminator(SMALL)(half).shape == (2,)


def test_decoding_a_feature_map_gives_the_image_of_its_latent():
    generator, latent = Generator(SMALL).eval(), torch.randn(3, 16)
    for layer in Generator.FEATURE_LAYERS:
        decoded = generator.half_from_features(generator.features(latent, layer), layer)
        assert torch.allclose(decoded, generator.forward_half(latent))
        assert torch.allclose(generator.from_features(generator.features(latent, layer), layer), generator(latent))
    assert torch.equal(generator.upsample(generator.forward_half(latent)), generator(latent))
    with pytest.raises(ValueError):
        generator.features(latent, 3)


def test_diff_augment_is_seeded_and_keeps_the_shape():
    images = torch.rand(4, 1, 56, 46)
    first = diff_augment(images, torch.Generator().manual_seed(3))
    again = diff_augment(images, torch.Generator().manual_seed(3))
    assert first.shape == images.shape and torch.equal(first, again)
    assert not torch.equal(first, diff_augment(images, torch.Generator().manual_seed(4)))


def test_a_resumed_run_ends_exactly_where_an_uninterrupted_one_does(faces, tmp_path):
    public = faces.images[faces.labels >= 20][:40]
    settings = PriorTraining(steps=4, batch_size=4, checkpoint_every=2)
    train_prior(public, SMALL, settings, tmp_path / "whole", log=lambda line: None)
    train_prior(public, SMALL, settings, tmp_path / "split", log=lambda line: None, stop_after=2)
    lines: list[str] = []
    train_prior(public, SMALL, settings, tmp_path / "split", log=lines.append)
    assert lines == ["resumed at step 2"]
    whole, split = load_file(tmp_path / "whole" / CHECKPOINT_WEIGHTS), load_file(tmp_path / "split" / CHECKPOINT_WEIGHTS)
    assert whole.keys() == split.keys() and all(torch.equal(whole[k], split[k]) for k in whole)


def test_other_settings_in_the_same_folder_and_an_unfinished_run_are_refused(faces, tmp_path):
    public = faces.images[faces.labels >= 20][:40]
    train_prior(public, SMALL, PriorTraining(steps=4, batch_size=4), tmp_path, log=lambda line: None, stop_after=2)
    with pytest.raises(MiriskError, match="other settings"):
        train_prior(public, SMALL, PriorTraining(steps=8, batch_size=8), tmp_path, log=lambda line: None)
    with pytest.raises(MiriskError, match="step 2 of 4"):
        prior_from_checkpoint(tmp_path, faces)
    with pytest.raises(MiriskError, match="at step 2, past the 1 steps asked for"):
        train_prior(public, SMALL, PriorTraining(steps=1, batch_size=4), tmp_path, log=lambda line: None)


def test_a_run_may_be_ended_early_or_extended_and_extending_is_training_longer(faces, tmp_path):
    """Nothing in a step depends on the planned length: a run of 4 steps ended at 2 is the
    first half of a run of 4, and a run extended from 2 to 4 is a run of 4."""
    public = faces.images[faces.labels >= 20][:40]
    quiet = {"log": lambda line: None}
    train_prior(public, SMALL, PriorTraining(steps=4, batch_size=4), tmp_path / "a", stop_after=2, **quiet)
    train_prior(public, SMALL, PriorTraining(steps=2, batch_size=4), tmp_path / "a", **quiet)  # ended early
    assert prior_from_checkpoint(tmp_path / "a", faces).metadata["training"]["steps_run"] == 2
    train_prior(public, SMALL, PriorTraining(steps=4, batch_size=4), tmp_path / "a", **quiet)  # extended
    train_prior(public, SMALL, PriorTraining(steps=4, batch_size=4), tmp_path / "b", **quiet)
    extended, whole = load_file(tmp_path / "a" / CHECKPOINT_WEIGHTS), load_file(tmp_path / "b" / CHECKPOINT_WEIGHTS)
    assert all(torch.equal(extended[k], whole[k]) for k in whole)


@pytest.mark.parametrize("bad", [dict(steps=0), dict(batch_size=1), dict(learning_rate=float("nan")),
                                 dict(ema_decay=1.0)])
def test_bad_training_settings_are_refused(bad):
    with pytest.raises(MiriskError):
        PriorTraining(**bad)
