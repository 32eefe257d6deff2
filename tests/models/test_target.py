"""The frozen copy attacks and the gateway run: the same network, convolutions channels-last."""

import torch
from torch import nn

from mirisk.models.architectures import build_model
from mirisk.models.target import TargetModel
from mirisk.runtime import convolution_layout


def target_of(architecture: str) -> TargetModel:
    torch.manual_seed(0)
    module = build_model(architecture, (1, 112, 92), 5)
    return TargetModel(module, architecture, (1, 112, 92), tuple(f"s{i}" for i in range(5)))


def test_a_convolutional_copy_is_channels_last_frozen_and_answers_as_the_original():
    target = target_of("cnn")
    network = target.frozen_network()
    convolutions = [parameter for parameter in network.parameters() if parameter.dim() == 4]
    wide = [weight for weight in convolutions if weight.shape[1] > 1]  # one input channel: both layouts at once
    assert wide and all(weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
                        for weight in wide)
    assert not network.training and not any(parameter.requires_grad for parameter in network.parameters())
    assert all(parameter.is_contiguous() for parameter in target.module.parameters())  # the original is untouched
    images = torch.rand(6, 1, 112, 92)
    with torch.no_grad():
        assert torch.allclose(network(images), target.module.eval()(images), atol=1e-5)


def test_a_network_without_convolutions_is_left_as_it_is():
    module = build_model("softmax", (1, 112, 92), 5)
    weights = [parameter.data_ptr() for parameter in module.parameters()]
    assert convolution_layout(module, torch.rand(2, 1, 112, 92)) is module
    assert [parameter.data_ptr() for parameter in module.parameters()] == weights


class ViewsItsActivations(nn.Module):
    """A user's network written for the default layout: ``view`` fails on a channels-last activation."""

    def __init__(self) -> None:
        super().__init__()
        self.convolution, self.classifier = nn.Conv2d(1, 4, 3), nn.Linear(4 * 110 * 90, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.convolution(x)
        return self.classifier(features.view(features.size(0), -1))


def test_a_network_that_needs_the_default_layout_keeps_it_and_still_answers():
    torch.manual_seed(0)
    target = TargetModel(ViewsItsActivations(), "custom", (1, 112, 92), tuple(f"s{i}" for i in range(5)))
    network = target.frozen_network()
    assert all(parameter.is_contiguous() for parameter in network.parameters())
    images = torch.rand(3, 1, 112, 92)
    with torch.no_grad():
        assert torch.equal(network(images), target.module.eval()(images))
