"""Auditing a federated round: the replay on stand-in images, and the checks on its inputs."""

import dataclasses

import pytest
import torch

from mirisk.audit.kinds.federated import load_replay_images, recorded_defence, replay_round, run_gradient_unit
from mirisk.audit.kinds import build_plan
from mirisk.audit.plan import parse_accesses
from mirisk.data.faces import BUNDLED
from mirisk.errors import MiriskError
from mirisk.fl.simulation import UpdateDefence, simulate_round
from mirisk.models.architectures import build_model
from mirisk.pipelines.federated import downscaled


@pytest.fixture(scope="module")
def captured(faces):
    """A FedSGD round of one client with two bundled faces, on a fresh LeNet, as a server records it."""
    data = downscaled(faces, 2)
    torch.manual_seed(0)
    module = build_model("lenet", data.input_shape, data.n_classes)
    return simulate_round(module, torch.as_tensor(data.images[[0, 10]]), torch.as_tensor(data.labels[[0, 10]]),
                          "lenet", data.n_classes)


def test_replay_images_are_pooled_to_the_round_and_checked(captured):
    assert load_replay_images(captured, BUNDLED).input_shape == (1, 56, 46)
    with pytest.raises(MiriskError, match="give --data"):
        load_replay_images(captured, None)
    smaller = dataclasses.replace(captured, input_shape=(1, 30, 30))
    with pytest.raises(MiriskError, match="takes 1x30x30 images.*no whole pooling factor"):
        load_replay_images(smaller, BUNDLED)
    with pytest.raises(MiriskError, match="holds 40 people; the round's model has only 10 classes"):
        load_replay_images(dataclasses.replace(captured, n_classes=10), BUNDLED)


def test_the_replay_keeps_the_rounds_weights_schedule_and_defence(captured, faces):
    data = downscaled(faces, 2)
    defended = dataclasses.replace(captured, defence=UpdateDefence(clip=1.0, noise=0.5).describe())
    assert recorded_defence(defended) == UpdateDefence(clip=1.0, noise=0.5)
    replayed, chosen = replay_round(defended, data, recorded_defence(defended), seed=0)
    assert len(chosen) == 2 and replayed.protocol == "fedsgd" and replayed.defence == defended.defence
    assert all(torch.equal(replayed.weights[name], captured.weights[name]) for name in captured.weights)


def test_a_gradient_unit_measures_the_replay_and_the_noise_check(captured, faces):
    plan = build_plan("federated", parse_accesses("white-box"), None,
                      {"gradient_attacks": ["idlg"], "gradient_iterations": 100, "gradient_restarts": 1})
    payload, files = run_gradient_unit(plan.units[0], plan.settings, captured, downscaled(faces, 2), redact=False)
    # measured: iDLG re-identifies both replayed faces (chance 2.5%); the noise check brings it to 0%
    assert payload["metrics"]["reid_top1"] >= 0.5 and payload["metrics"]["label_accuracy"] == 1.0
    check = payload["defence_check"]
    assert check["defence"]["noise"] == 1e-4 and check["ssim_mean"] < payload["metrics"]["ssim_mean"]
    assert len(payload["captured"]["recovered_labels"]) == 2
    assert set(files) == {"reconstructions.png", "reconstructions.npz", "captured.npz"}


def test_the_federated_plan_refuses_what_does_not_apply():
    with pytest.raises(MiriskError, match="makes none"):
        build_plan("federated", parse_accesses("white-box"), 100, {})
    with pytest.raises(MiriskError, match="unknown gradient attack 'deep-leak'"):
        build_plan("federated", parse_accesses("white-box"), None, {"gradient_attacks": ["deep-leak"]})
    with pytest.raises(MiriskError, match="no attack applies to this federated model under scores"):
        build_plan("federated", parse_accesses("scores"), None, {})
