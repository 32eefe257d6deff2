"""Model-inversion attacks. Each states its paper and its threat model."""

from mirisk.attacks.result import AttackResult
from mirisk.attacks.miface import MIFace, TotalVariationPrior

__all__ = ["AttackResult", "MIFace", "TotalVariationPrior"]
