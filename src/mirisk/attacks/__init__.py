"""Model-inversion attacks. Each states its paper and its threat model, and keeps the one
contract of :mod:`mirisk.attacks.contract`: ``attack.run(access, targets, *, generator,
progress)``."""

from mirisk.attacks.attribute import FredriksonInversion, LearnedAttributeAttack, Records
from mirisk.attacks.basis import ImageBasis, LatentBasis, dct_basis, public_face_basis
from mirisk.attacks.blackbox import ScoreBlackBox
from mirisk.attacks.contract import Attack, seeded
from mirisk.attacks.decoder import DecoderInversion, DecoderSettings
from mirisk.attacks.generative import GenerativeInversion
from mirisk.attacks.gradient import GradientInversion
from mirisk.attacks.labelonly import BoundaryRepulsion
from mirisk.attacks.miface import MIFace, TotalVariationPrior
from mirisk.attacks.result import AttackResult

__all__ = [
    "Attack",
    "AttackResult",
    "BoundaryRepulsion",
    "DecoderInversion",
    "DecoderSettings",
    "FredriksonInversion",
    "GenerativeInversion",
    "GradientInversion",
    "ImageBasis",
    "LatentBasis",
    "LearnedAttributeAttack",
    "MIFace",
    "Records",
    "ScoreBlackBox",
    "TotalVariationPrior",
    "dct_basis",
    "public_face_basis",
    "seeded",
]
