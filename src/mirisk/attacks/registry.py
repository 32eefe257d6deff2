"""Every attack under :mod:`mirisk.attacks`, each keeping :mod:`mirisk.attacks.contract`;
``tests/attacks/test_contract.py`` runs each one through a tiny model."""

from __future__ import annotations

from mirisk.attacks.attribute import FredriksonInversion, LearnedAttributeAttack
from mirisk.attacks.blackbox import ScoreBlackBox
from mirisk.attacks.decoder import DecoderInversion
from mirisk.attacks.generative import GenerativeInversion
from mirisk.attacks.gradient import GradientInversion
from mirisk.attacks.labelonly import BoundaryRepulsion
from mirisk.attacks.miface import MIFace

REGISTRY: tuple[type, ...] = (
    MIFace, ScoreBlackBox, BoundaryRepulsion, GenerativeInversion,  # image classifiers
    GradientInversion,  # a federated round's update
    DecoderInversion,  # a segmentation model's outputs
    FredriksonInversion, LearnedAttributeAttack,  # a tabular model's answers
)
