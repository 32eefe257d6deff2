"""Each output policy's exact output on a batch."""

import pytest
import torch

from mirisk.access.policies import (
    Chain, FullScores, LabelOnly, ReverseSigmoid, Rounding, ScoreNoise, TopK, parse_policy,
)
from mirisk.access.oracle import Oracle
from mirisk.errors import MiriskError
from mirisk.threats import AccessLevel

ROWS = torch.tensor([[0.1234, 0.5432, 0.3334], [0.7001, 0.0999, 0.2000], [0.3, 0.3, 0.4]])


def test_full_scores_are_unchanged():
    assert torch.equal(FullScores().apply(ROWS), ROWS)


def test_top_k_keeps_exactly_k_largest_per_row():
    out = TopK(2).apply(ROWS)
    assert torch.equal((out > 0).sum(1), torch.tensor([2, 2, 2]))
    assert torch.equal(out[0], torch.tensor([0.0, 0.5432, 0.3334]))
    assert torch.equal(out[1], torch.tensor([0.7001, 0.0, 0.2000]))
    assert torch.equal(TopK(10).apply(ROWS), ROWS)


def test_rounding():
    torch.testing.assert_close(Rounding(1).apply(ROWS), torch.tensor([[0.1, 0.5, 0.3], [0.7, 0.1, 0.2], [0.3, 0.3, 0.4]]))
    torch.testing.assert_close(Rounding(2).apply(ROWS)[0], torch.tensor([0.12, 0.54, 0.33]))


def test_label_only_is_one_hot_for_a_batch():
    out = LabelOnly().apply(ROWS)
    assert torch.equal(out, torch.tensor([[0.0, 1, 0], [1, 0, 0], [0, 0, 1]]))


def test_noise_is_seeded_bounded_and_of_the_right_scale():
    big = torch.full((20000, 3), 0.5)
    laplace = ScoreNoise("laplace", 0.05, seed=1).apply(big)
    assert 0 <= laplace.min() and laplace.max() <= 1
    # Laplace(b): mean absolute deviation b; Gaussian(s): standard deviation s.
    assert (laplace - 0.5).abs().mean().item() == pytest.approx(0.05, rel=0.05)
    gaussian = ScoreNoise("gaussian", 0.05, seed=1).apply(big)
    assert (gaussian - 0.5).std().item() == pytest.approx(0.05, rel=0.05)
    assert torch.equal(ScoreNoise("laplace", 0.05, seed=1).apply(big), laplace)


def test_reverse_sigmoid_keeps_rows_normalised_and_the_top_class():
    out = ReverseSigmoid(beta=0.3, gamma=0.1).apply(ROWS[:2])
    torch.testing.assert_close(out.sum(1), torch.ones(2))
    assert torch.equal(out.argmax(1), ROWS[:2].argmax(1))
    assert not torch.allclose(out, ROWS[:2])


def test_chain_applies_in_order_and_reveals_the_least():
    chain = parse_policy("topk:2+round:1")
    assert isinstance(chain, Chain) and chain.spec == "topk:2+round:1"
    torch.testing.assert_close(chain.apply(ROWS)[0], torch.tensor([0.0, 0.5, 0.3]))
    assert chain.access is AccessLevel.TOP_K
    assert parse_policy("round:2+label").access is AccessLevel.LABEL_ONLY


@pytest.mark.parametrize("spec", ["scores", "topk:3", "round:2", "noise:laplace:0.05", "noise:gaussian:0.1",
                                  "reverse-sigmoid:1,0.1", "label"])
def test_specs_round_trip(spec):
    assert parse_policy(parse_policy(spec).spec).spec == parse_policy(spec).spec


@pytest.mark.parametrize("spec", ["topk", "topk:0", "round:x", "noise:uniform:0.1", "reverse-sigmoid:1", "blur"])
def test_bad_specs_are_clear_errors(spec):
    with pytest.raises(MiriskError):
        parse_policy(spec)


@pytest.mark.parametrize("spec", ["noise:laplace:nan", "noise:gaussian:inf", "reverse-sigmoid:nan,nan",
                                  "reverse-sigmoid:5,0.1", "round:100000", "noise:laplace:3", "round:0_1",
                                  "round:\u0662", "topk:-1"])
def test_non_finite_or_absurd_parameters_are_refused(spec):
    with pytest.raises(MiriskError, match="bad number|must be finite|needs|noise needs"):
        parse_policy(spec)


def test_a_top_k_that_reveals_every_score_is_refused_for_the_model(targets):
    target = targets["softmax"]
    with pytest.raises(MiriskError, match="topk:40 on a model of 40 classes reveals every score"):
        Oracle(target, parse_policy("topk:40"))
    with pytest.raises(MiriskError, match="topk:1000"):
        Oracle(target, parse_policy("round:2+topk:1000"))
    Oracle(target, parse_policy("topk:39"))
