"""Model-inversion attacks. Each states its paper and its threat model."""

from mirisk.attacks.basis import ImageBasis, dct_basis, public_face_basis
from mirisk.attacks.blackbox import ScoreBlackBox
from mirisk.attacks.labelonly import BoundaryRepulsion
from mirisk.attacks.miface import MIFace, TotalVariationPrior
from mirisk.attacks.result import AttackResult

__all__ = [
    "AttackResult",
    "BoundaryRepulsion",
    "ImageBasis",
    "MIFace",
    "ScoreBlackBox",
    "TotalVariationPrior",
    "dct_basis",
    "public_face_basis",
]
