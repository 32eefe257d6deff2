"""DP-SGD reaches the requested epsilon, and the accountants agree."""

import pytest
import torch
from opacus.accountants import RDPAccountant
from torch import nn
from torch.utils.data import TensorDataset

from mirisk.defences import DPSettings, train_dp_sgd
from mirisk.errors import MiriskError


@pytest.mark.parametrize("epsilon", [0.5, 3.0])
def test_spent_epsilon_is_the_requested_one_and_rdp_agrees(epsilon):
    generator = torch.Generator().manual_seed(0)
    inputs = torch.rand(600, 5, generator=generator)
    dataset = TensorDataset(inputs, inputs.sum(dim=1, keepdim=True) / 5)
    record = train_dp_sgd(nn.Linear(5, 1), dataset, nn.MSELoss(), DPSettings(epsilon), epochs=5,
                          batch_size=60, learning_rate=0.5)
    assert record["epsilon"] == pytest.approx(epsilon, rel=0.05)
    assert record["sample_rate"] == pytest.approx(0.1) and record["steps"] == 50 and record["accountant"] == "prv"
    # An independent bound: RDP on the same mechanism is looser than PRV, never tighter.
    rdp = RDPAccountant()
    rdp.history = [(record["noise_multiplier"], record["sample_rate"], record["steps"])]
    rdp_epsilon = rdp.get_epsilon(record["delta"])
    assert record["epsilon"] <= rdp_epsilon * 1.01 <= record["epsilon"] * 1.5


def test_training_with_dp_still_learns():
    generator = torch.Generator().manual_seed(0)
    inputs = torch.rand(2000, 3, generator=generator)
    targets = inputs @ torch.tensor([[0.5], [-0.3], [0.2]])
    module = nn.Linear(3, 1)
    train_dp_sgd(module, TensorDataset(inputs, targets), nn.MSELoss(), DPSettings(8.0, max_grad_norm=0.5),
                 epochs=20, batch_size=200, learning_rate=0.5, momentum=0.5)
    assert torch.allclose(module.weight.detach(), torch.tensor([[0.5, -0.3, 0.2]]), atol=0.15)


@pytest.mark.parametrize(("settings", "message"), [({"epsilon": 0}, "epsilon"), ({"epsilon": 1, "delta": 1.5}, "delta"),
                                                   ({"epsilon": 1, "max_grad_norm": -1}, "clipping")])
def test_bad_settings_are_named(settings, message):
    with pytest.raises(MiriskError, match=message):
        DPSettings(**settings)


def test_ghost_clipping_trains_to_the_same_guarantee_as_hooks():
    generator = torch.Generator().manual_seed(0)
    inputs = torch.rand(400, 20, generator=generator)
    dataset = TensorDataset(inputs, (inputs[:, 0] > 0.5).long())
    records = {mode: train_dp_sgd(nn.Linear(20, 2), dataset, nn.CrossEntropyLoss(), DPSettings(4.0), epochs=3,
                                  batch_size=50, learning_rate=0.5, grad_sample_mode=mode)
               for mode in ("hooks", "ghost")}
    assert records["ghost"]["clipping"] == "per example (ghost)"
    assert records["ghost"]["epsilon"] == pytest.approx(records["hooks"]["epsilon"], rel=1e-6)
    assert records["ghost"]["noise_multiplier"] == records["hooks"]["noise_multiplier"]
    with pytest.raises(MiriskError, match="hooks or ghost"):
        train_dp_sgd(nn.Linear(20, 2), dataset, nn.CrossEntropyLoss(), DPSettings(4.0), epochs=1, batch_size=50,
                     learning_rate=0.5, grad_sample_mode="functorch")
