"""One simulated round: protocols, secure aggregation and each update defence."""

import pytest
import torch

from mirisk.errors import MiriskError
from mirisk.fl.simulation import ClientSettings, UpdateDefence, simulate_round
from mirisk.models.architectures import build_model


def _round(small_faces, **kwargs):
    torch.manual_seed(0)
    module = build_model("lenet", small_faces.input_shape, small_faces.n_classes)
    images, labels = torch.as_tensor(small_faces.images[:4]), torch.as_tensor(small_faces.labels[:4])
    return simulate_round(module, images, labels, "lenet", small_faces.n_classes, **kwargs)


def test_one_fedavg_step_is_minus_the_learning_rate_times_the_fedsgd_gradient(small_faces):
    gradient = _round(small_faces).update
    step = _round(small_faces, settings=ClientSettings("fedavg", local_steps=1, local_learning_rate=0.5)).update
    assert all(torch.allclose(step[name], -0.5 * gradient[name], atol=1e-6) for name in gradient)


def test_secure_aggregation_records_only_the_mean(small_faces):
    aggregate = _round(small_faces, n_clients=2)
    assert aggregate.n_clients == 2 and aggregate.n_images == 4
    with pytest.raises(MiriskError, match="evenly"):
        _round(small_faces, n_clients=3)


def test_defences_clip_noise_sparsify_and_quantise(small_faces):
    clean = _round(small_faces).update
    assert _round(small_faces, defence=UpdateDefence(clip=0.5)).update_norm() == pytest.approx(0.5, rel=1e-4)
    noisy = _round(small_faces, defence=UpdateDefence(clip=0.5, noise=1.0))
    assert noisy.update_norm() > 10 * 0.5 and noisy.defence["epsilon_per_round"] > 0
    sparse = _round(small_faces, defence=UpdateDefence(sparsify=0.1)).update
    kept = sum(int((value != 0).sum()) for value in sparse.values()) / sum(value.numel() for value in clean.values())
    assert kept == pytest.approx(0.1, abs=0.01)
    quantised = _round(small_faces, defence=UpdateDefence(quantise=2)).update
    assert all(len(torch.unique(value)) <= 3 for value in quantised.values())


def test_more_noise_gives_a_smaller_epsilon():
    assert UpdateDefence(clip=1, noise=2.0).epsilon() < UpdateDefence(clip=1, noise=0.5).epsilon()
    assert UpdateDefence().epsilon() is None


@pytest.mark.parametrize(("settings", "message"), [
    ({"noise": 1.0}, "--clip"), ({"clip": -1}, "--clip"), ({"sparsify": 0}, "--sparsify"), ({"quantise": 40}, "bits"),
])
def test_bad_defences_are_named(settings, message):
    with pytest.raises(MiriskError, match=message):
        UpdateDefence(**settings)


def test_bad_protocol_is_named():
    with pytest.raises(MiriskError, match="fedsgd or fedavg"):
        ClientSettings("fedprox")
