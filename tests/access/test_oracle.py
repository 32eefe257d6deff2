"""The oracle counts every input and never exceeds its budget by one query."""

import pytest
import torch

from mirisk.access.oracle import Oracle, QueryBudgetExhausted
from mirisk.access.policies import LabelOnly, parse_policy
from mirisk.errors import MiriskError
from mirisk.models import TargetModel, build_model


@pytest.fixture()
def small_target() -> TargetModel:
    torch.manual_seed(0)
    return TargetModel(build_model("softmax", (1, 4, 4), 5), "softmax", (1, 4, 4), tuple("abcde"))


@pytest.mark.parametrize("batch", [1, 3, 7, 10])
def test_budget_is_never_exceeded(small_target, batch):
    oracle = Oracle(small_target, parse_policy("scores"), budget=25)
    answered = 0
    with pytest.raises(QueryBudgetExhausted):
        while True:
            answered += len(oracle.query(torch.rand(batch, 1, 4, 4)))
    assert oracle.queries_used == answered <= 25
    assert oracle.remaining == 25 - answered < batch


def test_policy_is_applied_and_inputs_are_checked(small_target):
    oracle = Oracle(small_target, LabelOnly())
    out = oracle.query(torch.rand(6, 1, 4, 4))
    assert torch.equal(out.sum(1), torch.ones(6)) and set(out.unique().tolist()) <= {0.0, 1.0}
    assert oracle.remaining is None and oracle.queries_used == 6
    with pytest.raises(MiriskError, match="oracle inputs"):
        oracle.query(torch.rand(2, 1, 5, 4))
