"""The served model: policy-restricted outputs, each policy parsed once per server."""

import numpy as np
import torch

from mirisk.gateway.serving import ServedModel
from mirisk.models import TargetModel, build_model


def test_answers_follow_the_policy_and_a_policy_is_kept_per_spec():
    torch.manual_seed(0)
    served = ServedModel(TargetModel(build_model("softmax", (1, 4, 4), 5), "softmax", (1, 4, 4), tuple("abcde")))
    batch = np.random.default_rng(0).random((3, 1, 4, 4), dtype=np.float32)
    labels = served.answer(batch, "label")
    assert labels.shape == (3, 5) and np.array_equal(labels.sum(axis=1), np.ones(3))
    assert ((served.answer(batch, "topk:2") > 0).sum(axis=1) == 2).all()
    assert served.policy("noise:laplace:0.1") is served.policy("noise:laplace:0.1")  # one random stream
