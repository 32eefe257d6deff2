"""What an audit's defence checks measured, typed: each black-box attack rerun under a
per-deployment query budget (``defences/budget_checks.json`` holds their ``to_json``) and
each output policy attacked through (``defences/policy_matrix.json``), and each DP-SGD
retrain measured (the points of ``defences/dp_sweep.json``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from mirisk.audit.plan import AttackUnit
from mirisk.metrics.identification import ImageIdentification
from mirisk.pipelines.face_sweep import SWEEP_ATTACKS, classic_sweep_attacks

Row = TypeVar("Row", bound="JudgedRow")


class JudgedRow:
    """JSON for a row of judged numbers: its ``judge_top1_ci`` is a tuple here, a list there."""

    judge_top1_ci: tuple[float, float]

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "judge_top1_ci": list(self.judge_top1_ci)}  # type: ignore[call-overload]

    @classmethod
    def from_json(cls: type[Row], payload: dict[str, Any]) -> Row:
        return cls(**{**payload, "judge_top1_ci": tuple(payload["judge_top1_ci"])})


@dataclass(frozen=True)
class BudgetCheck(JudgedRow):
    """One black-box attack rerun under a per-deployment query budget: the budget, what it
    spent, and what the independent judge, re-identification and the pixel evaluator made
    of its reconstructions (one row of ``defences/budget_checks.json``)."""

    unit: str
    access: str
    budget: int
    queries_used: int
    queries_per_person: float
    judge_top1: float
    judge_top1_ci: tuple[float, float]
    face_rate: float
    reid_top1: float
    identification_top1: float

    @classmethod
    def measured(cls, unit: AttackUnit, budget: int, payload: dict[str, Any]) -> BudgetCheck:
        """The check of ``unit`` under ``budget`` from its rerun's payload."""
        return cls(unit=unit.id, access=unit.access.value, budget=budget, queries_used=payload["queries_used"],
                   queries_per_person=budget / payload["n_targets"],
                   **ImageIdentification.from_json(payload["metrics"]).headline())


@dataclass(frozen=True)
class PolicyRow(JudgedRow):
    """One output policy of the matrix: the attack that got through it, what the independent
    judge, re-identification and the pixel evaluator made of its reconstructions, and what
    the policy costs a legitimate user on held-out photos (calibration error None where the
    policy reveals no score). One row of ``defences/policy_matrix.json``."""

    policy: str
    access: str
    attack: str
    judge_top1: float
    judge_top1_ci: tuple[float, float]
    face_rate: float
    reid_top1: float
    identification_top1: float
    queries_used: int
    accuracy: float
    calibration_error: float | None

    @property
    def success(self) -> float:
        """The attack's success as the verdict reads it: the better of judge identification
        and held-out re-identification."""
        return max(self.judge_top1, self.reid_top1)

    @classmethod
    def measured(cls, unit: AttackUnit, payload: dict[str, Any]) -> PolicyRow:
        """The row of ``unit`` (an attack through one policy) from its payload."""
        if unit.policy is None:
            raise ValueError(f"attack unit {unit.id} runs through no output policy")
        return cls(policy=unit.policy, access=unit.access.value, attack=unit.id, queries_used=payload["queries_used"],
                   **ImageIdentification.from_json(payload["metrics"]).headline(), **payload["policy_cost"])


# The attack each sweep level ran before a sweep point recorded it (report.json before 2026-12-03).
CLASSIC_SWEEP_UNITS = {attack.access: attack.unit for attack in classic_sweep_attacks()}


@dataclass(frozen=True)
class RetrainAttack:
    """What one attack (``unit``: the audit unit it repeats) reached on a DP-SGD retrain of
    a face model."""

    unit: str
    judge_top1: float
    reid_top1: float
    identification_top1: float

    @classmethod
    def from_json(cls, payload: dict[str, Any], access: str) -> RetrainAttack:
        """From a sweep point's numbers at ``access``."""
        return cls(unit=payload.get("attack", CLASSIC_SWEEP_UNITS[access]), judge_top1=payload["judge_top1"],
                   reid_top1=payload["reid_top1"], identification_top1=payload["identification_top1"])


@dataclass(frozen=True)
class FaceRetrain:
    """A face model retrained with DP-SGD at ``epsilon``: its accuracy on held-out photos and
    what each sweep attack (``white-box``, ``scores``) reached on it."""

    epsilon: float
    test_accuracy: float
    chance_top1: float
    attacks: dict[str, RetrainAttack]

    @classmethod
    def from_json(cls, point: dict[str, Any]) -> FaceRetrain:
        """From a point of the face sweep (its attacks under their names)."""
        return cls(epsilon=point["epsilon"], test_accuracy=point["test_accuracy"], chance_top1=point["chance_top1"],
                   attacks={name: RetrainAttack.from_json(point[name], name) for name in SWEEP_ATTACKS})


@dataclass(frozen=True)
class DosingRetrain:
    """The linear dosing model retrained at ``epsilon`` (None: non-private least squares):
    its error on held-out patients and the attack's accuracy on the training records'
    ``sensitive`` column (from the recorded dose)."""

    epsilon: float | None
    mae: float
    within_20pct: float
    attack_accuracy: float

    @classmethod
    def from_json(cls, point: dict[str, Any], sensitive: str) -> DosingRetrain:
        """From a point of the IWPC sweep, for the column ``sensitive``."""
        return cls(epsilon=point["epsilon"], mae=point["mae"], within_20pct=point["within_20pct"],
                   attack_accuracy=point[f"{sensitive}_true_train"])
