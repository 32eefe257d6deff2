"""Label smoothing: matches PyTorch's for alpha >= 0 and extends it to negative alpha."""

import pytest
import torch

from mirisk.defences import SmoothedCrossEntropy
from mirisk.errors import MiriskError


@pytest.mark.parametrize("alpha", [0.0, 0.1, 0.3])
def test_positive_smoothing_is_pytorchs(alpha):
    logits, labels = torch.randn(16, 5, generator=torch.Generator().manual_seed(0)), torch.arange(16) % 5
    expected = torch.nn.functional.cross_entropy(logits, labels, label_smoothing=alpha)
    assert torch.allclose(SmoothedCrossEntropy(alpha)(logits, labels), expected, atol=1e-6)


def test_negative_smoothing_rewards_confidence_beyond_the_one_hot_optimum():
    labels = torch.zeros(1, dtype=torch.int64)
    sure, surer = torch.tensor([[4.0, 0.0, 0.0]]), torch.tensor([[8.0, 0.0, 0.0]])
    negative = SmoothedCrossEntropy(-0.1)
    assert negative(surer, labels) < negative(sure, labels)
    assert negative(surer, labels) < torch.nn.functional.cross_entropy(surer, labels)


@pytest.mark.parametrize("alpha", [1.0, -1.5])
def test_out_of_range_is_named(alpha):
    with pytest.raises(MiriskError, match="label smoothing"):
        SmoothedCrossEntropy(alpha)


def test_per_example_losses_for_ghost_clipping():
    logits, labels = torch.randn(6, 4, generator=torch.Generator().manual_seed(1)), torch.arange(6) % 4
    per_example = SmoothedCrossEntropy(-0.05, reduction="none")(logits, labels)
    assert per_example.shape == (6,)
    assert torch.allclose(per_example.mean(), SmoothedCrossEntropy(-0.05)(logits, labels))
