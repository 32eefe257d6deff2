"""The served model: policy-restricted outputs, each policy parsed once per server, and
several requests answered in one forward pass only where that changes no answer."""

import logging

import numpy as np
import torch

from mirisk.gateway.serving import ServedModel, rows_independent
from mirisk.models import TargetModel, build_model


def test_answers_follow_the_policy_and_a_policy_is_kept_per_spec():
    torch.manual_seed(0)
    served = ServedModel(TargetModel(build_model("softmax", (1, 4, 4), 5), "softmax", (1, 4, 4), tuple("abcde")))
    batch = np.random.default_rng(0).random((3, 1, 4, 4), dtype=np.float32)
    labels = served.answer(batch, "label")
    assert labels.shape == (3, 5) and np.array_equal(labels.sum(axis=1), np.ones(3))
    assert ((served.answer(batch, "topk:2") > 0).sum(axis=1) == 2).all()
    assert served.policy("noise:laplace:0.1") is served.policy("noise:laplace:0.1")  # one random stream


def softmax_target(n_classes: int = 5) -> TargetModel:
    torch.manual_seed(0)
    return TargetModel(build_model("softmax", (1, 4, 4), n_classes), "softmax", (1, 4, 4), tuple("abcde")[:n_classes])


class BatchNormalised(torch.nn.Module):
    """A network whose answer to one input depends on the rest of its batch."""

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        flat = inputs.flatten(1)[:, :5]
        return flat - flat.mean(dim=0, keepdim=True)


def test_requests_answered_together_get_what_each_gets_alone_with_its_own_policy():
    served = ServedModel(softmax_target(), max_inputs=4)
    rng = np.random.default_rng(1)
    requests = [(rng.random((n, 1, 4, 4), dtype=np.float32), policy)
                for n, policy in [(1, "scores"), (2, "label"), (3, "topk:2"), (1, "scores")]]
    together = served.answer_all(requests)
    alone = [served.answer(batch, policy) for batch, policy in requests]
    assert served.shares_passes and [rows.shape for rows in together] == [(1, 5), (2, 5), (3, 5), (1, 5)]
    for grouped, single in zip(together, alone, strict=True):
        np.testing.assert_allclose(grouped, single, atol=1e-5)
    assert ((together[2] > 0).sum(axis=1) == 2).all() and np.array_equal(together[1].sum(axis=1), np.ones(2))


def test_forward_passes_hold_at_most_max_inputs_and_never_split_a_request():
    served = ServedModel(softmax_target(), max_inputs=4)
    sizes: list[int] = []
    served._network.register_forward_hook(lambda module, inputs, output: sizes.append(len(inputs[0])))
    served.answer_all([(np.zeros((n, 1, 4, 4), np.float32), "scores") for n in (1, 2, 3, 6, 1)])
    assert sizes == [3, 3, 6, 1]


def test_a_network_that_mixes_the_rows_of_its_batch_answers_each_request_alone(caplog):
    target = TargetModel(BatchNormalised(), "custom", (1, 4, 4), tuple("abcde"))
    with caplog.at_level(logging.WARNING, logger="mirisk.gateway"):
        served = ServedModel(target, max_inputs=64)
    requests = [(np.full((1, 1, 4, 4), value, np.float32), "scores") for value in (0.1, 0.9)]
    together = served.answer_all(requests)
    assert not served.shares_passes and "a forward pass of its own" in caplog.text
    for grouped, (batch, policy) in zip(together, requests, strict=True):
        np.testing.assert_array_equal(grouped, served.answer(batch, policy))
    assert rows_independent(softmax_target().frozen_network(), softmax_target())
