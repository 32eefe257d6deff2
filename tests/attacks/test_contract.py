"""Every registered attack keeps the one contract (mirisk.attacks.contract), checked on a
tiny model as scikit-learn's estimator checks do: its result's type and size, the same
result under the same generator, a query budget never exceeded, and the caller's global
random generators left as they were."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch

from mirisk.access.oracle import Oracle, QueryBudgetExhausted
from mirisk.access.policies import parse_policy
from mirisk.access.segmentation import SegmentationOracle
from mirisk.access.tabular import TabularOracle
from mirisk.access.whitebox import WhiteBoxAccess
from mirisk.attacks.attribute import (
    AttributeInference,
    AttributeTask,
    FredriksonInversion,
    LearnedAttributeAttack,
    Records,
)
from mirisk.attacks.blackbox import ScoreBlackBox
from mirisk.attacks.contract import seeded
from mirisk.attacks.decoder import DecoderInversion, DecoderSettings
from mirisk.attacks.generative import GenerativeInversion
from mirisk.attacks.gradient import GradientInversion
from mirisk.attacks.labelonly import BoundaryRepulsion
from mirisk.attacks.miface import MIFace
from mirisk.attacks.registry import REGISTRY
from mirisk.attacks.result import AttackResult
from mirisk.data.iwpc import DEMOGRAPHICS, IWPC_SCHEMA
from mirisk.fl.simulation import simulate_round
from mirisk.models import TargetModel, build_model
from mirisk.models.segmentation import SegmentationTarget, build_segmenter
from mirisk.priors.gan import Discriminator, Generator, PriorShape
from mirisk.priors.store import FacePrior

SHAPE = (1, 32, 32)
CLASSES = ("a", "b", "c")


@dataclass
class Case:
    """One attack on a tiny subject: the attack, a fresh access (with a query budget, or None
    for an attack that sends no queries), the targets, and how many results they make."""

    attack: Any
    access: Callable[[int | None], Any]
    targets: Any
    count: int
    budget: int | None = None


def tiny_classifier() -> TargetModel:
    torch.manual_seed(0)
    return TargetModel(build_model("mlp", SHAPE, 3, hidden=8), "mlp", SHAPE, CLASSES,
                       architecture_params={"hidden": 8})


def tiny_prior() -> FacePrior:
    torch.manual_seed(0)
    shape = PriorShape(*SHAPE, latent_dim=8, generator_width=4, discriminator_width=4)
    return FacePrior(Generator(shape).eval(), Discriminator(shape).eval(),
                     {"data": {"people": [], "source": "an untrained test prior"}})


def image_cases() -> dict[type, Case]:
    model = tiny_classifier()

    def oracle(policy: str) -> Callable[[int | None], Oracle]:
        return lambda budget: Oracle(model, parse_policy(policy), budget=budget)

    return {
        MIFace: Case(MIFace(iterations=5), lambda _: WhiteBoxAccess(model), [0, 1, 2], 3),
        ScoreBlackBox: Case(ScoreBlackBox(iterations=50, samples=2), oracle("scores"), [0, 1, 2], 3, budget=100),
        BoundaryRepulsion: Case(BoundaryRepulsion(iterations=20, points=4, init_rounds=3, init_batch=8),
                                oracle("label"), [0, 1, 2], 3, budget=100),
        GenerativeInversion: Case(GenerativeInversion(iterations=2, starts=2, candidates=4, prior=tiny_prior()),
                                  lambda _: WhiteBoxAccess(model), [0, 2], 2),
    }


def federated_case() -> Case:
    torch.manual_seed(0)
    module = build_model("softmax", SHAPE, 3)
    images = torch.rand(2, *SHAPE, generator=seeded(1))
    record = simulate_round(module, images, torch.tensor([0, 2]), "softmax", 3)
    return Case(GradientInversion(iterations=3, restarts=2), lambda _: record, None, 2)


def segmentation_case() -> Case:
    torch.manual_seed(0)
    target = SegmentationTarget(build_segmenter("unet", 1, 3, width=4).eval(), "unet", CLASSES)
    scans = np.random.default_rng(0).random((5, 1, 32, 32), dtype=np.float32)
    observed = SegmentationOracle(target, "probs").query(scans[3:])
    attack = DecoderInversion(scans[:3], DecoderSettings(width=4, depth=2, epochs=2, batch_size=2))
    return Case(attack, lambda _: SegmentationOracle(target, "probs"), observed, 2)


def tabular_cases(iwpc_linear, iwpc_split) -> dict[type, Case]:
    task = AttributeTask(IWPC_SCHEMA, "vkorc1", DEMOGRAPHICS)
    aux, people = iwpc_split.aux[:200], iwpc_split.train[:30]
    auxiliary = Records(aux, aux["dose_mg_week"].to_numpy())
    targets = Records(people, people["dose_mg_week"].to_numpy())
    def oracle(budget: int | None) -> TabularOracle:
        return TabularOracle(iwpc_linear, budget=budget)

    # Fredrikson queries each auxiliary record once, the learned attack each one's 18
    # candidates; both query every target's 18 candidates.
    return {FredriksonInversion: Case(FredriksonInversion(task, auxiliary), oracle, targets, 30, budget=200 + 30 * 18),
            LearnedAttributeAttack: Case(LearnedAttributeAttack(task, auxiliary), oracle, targets, 30,
                                         budget=(200 + 30) * 18)}


@pytest.fixture(scope="module")
def cases(iwpc_linear, iwpc_split) -> dict[type, Case]:
    return {**image_cases(), GradientInversion: federated_case(), DecoderInversion: segmentation_case(),
            **tabular_cases(iwpc_linear, iwpc_split)}


def test_every_registered_attack_has_a_case(cases):
    assert set(REGISTRY) == set(cases)


def outputs(result: AttackResult | AttributeInference) -> np.ndarray:
    return result.posterior if isinstance(result, AttributeInference) else result.reconstructions.numpy()


@pytest.mark.parametrize("attack_class", REGISTRY, ids=lambda cls: cls.__name__)
def test_the_attack_keeps_the_contract(cases, attack_class):
    case = cases[attack_class]
    torch.manual_seed(123)
    np.random.seed(123)
    torch_state, numpy_state = torch.random.get_rng_state(), np.random.get_state()
    first = case.attack.run(case.access(case.budget), case.targets, generator=seeded(7))
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), numpy_state))
    again = case.attack.run(case.access(case.budget), case.targets, generator=seeded(7))
    assert isinstance(first, AttackResult | AttributeInference) and len(outputs(first)) == case.count
    np.testing.assert_array_equal(outputs(first), outputs(again))
    if isinstance(first, AttackResult):
        assert first.attack == attack_class.name or attack_class is GradientInversion
        assert len(first.target_labels) == len(first.stop_reasons) == case.count


@pytest.mark.parametrize("attack_class", [cls for cls in REGISTRY if cls in (ScoreBlackBox, BoundaryRepulsion,
                                                                           FredriksonInversion, LearnedAttributeAttack)],
                         ids=lambda cls: cls.__name__)
def test_a_query_attack_never_spends_past_its_budget(cases, attack_class):
    case = cases[attack_class]
    access = case.access(case.budget)
    case.attack.run(access, case.targets, generator=seeded(0))
    assert 0 < access.queries_used <= case.budget


def test_the_score_attack_stops_at_the_budget_keeping_its_best(cases):
    case = cases[ScoreBlackBox]  # 3 people x 2 x 2 samples = 12 queries a step; 100 allow 8 steps
    result = case.attack.run(case.access(case.budget), case.targets, generator=seeded(0))
    assert result.queries_used == 96 and set(result.stop_reasons) == {"budget"}
    assert result.iterations.tolist() == [8, 8, 8]


def test_different_generators_draw_different_searches(cases):
    case = cases[ScoreBlackBox]
    runs = [case.attack.run(case.access(None), case.targets, generator=seeded(seed)) for seed in (0, 1)]
    assert not torch.equal(runs[0].reconstructions, runs[1].reconstructions)


@pytest.mark.parametrize("attack_class", [FredriksonInversion, LearnedAttributeAttack], ids=lambda cls: cls.__name__)
def test_an_attribute_attack_short_of_budget_is_refused_before_it_spends_past_it(cases, attack_class):
    case = cases[attack_class]
    access = case.access(case.budget - 1)
    with pytest.raises(QueryBudgetExhausted):
        case.attack.run(access, case.targets)
    assert access.queries_used <= case.budget - 1
