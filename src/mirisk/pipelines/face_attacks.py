"""The face attacks by the names the audit and the sweep use, built from their settings:
MI-Face in pixel space (Fredrikson et al., CCS 2015), the score black-box attack and
label-only boundary repulsion in a DCT basis, and the same three threat models in a face
prior's latent space (GMI, Zhang et al., CVPR 2020; NES through the oracle; BREP-MI, Kahla
et al., CVPR 2022)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mirisk.access.oracle import Oracle
from mirisk.access.policies import parse_policy
from mirisk.access.whitebox import WhiteBoxAccess
from mirisk.attacks.basis import LatentBasis
from mirisk.attacks.blackbox import ScoreBlackBox
from mirisk.attacks.contract import Attack
from mirisk.attacks.generative import GenerativeInversion
from mirisk.attacks.labelonly import BoundaryRepulsion
from mirisk.errors import MiriskError
from mirisk.models.target import TargetModel
from mirisk.pipelines.faces import configured_miface
from mirisk.priors.store import FacePrior

WHITE_BOX_ATTACKS = ("miface", "generative")
SCORE_ATTACKS = ("blackbox", "generative-scores")
LABEL_ATTACKS = ("labelonly", "generative-labelonly")
LATENT_ATTACKS = ("generative", "generative-scores", "generative-labelonly")


def build_face_attack(name: str, iterations: int, prior: FacePrior | None = None,
                      start: float | None = None) -> Attack:
    """The attack called ``name`` with ``iterations`` steps; the latent attacks need the
    face ``prior``, MI-Face takes an optional uniform ``start``."""
    if name in LATENT_ATTACKS and prior is None:
        raise MiriskError(f"the {name} attack searches a face prior's latent space; none was given")
    if name == "miface":
        return configured_miface(iterations=iterations, start=start)
    if name == "generative":
        return GenerativeInversion(iterations=iterations, prior=prior)
    if name not in (*SCORE_ATTACKS, *LABEL_ATTACKS):
        raise MiriskError(f"unknown face attack {name!r}")
    latent = name in LATENT_ATTACKS
    basis = LatentBasis(prior) if latent else None  # None: the DCT basis of the model's input
    if name in SCORE_ATTACKS:
        return ScoreBlackBox(iterations=iterations, basis=basis)
    return BoundaryRepulsion(iterations=iterations, init_scale=1.0 if latent else 3.0, basis=basis)


def sweep_access(name: str) -> Callable[[TargetModel], Any]:
    """How a retrain is reached by the attack ``name``: its weights (white-box), or an
    unlimited oracle serving full scores (score attacks)."""
    if name in WHITE_BOX_ATTACKS:
        return WhiteBoxAccess
    if name in SCORE_ATTACKS:
        return lambda model: Oracle(model, parse_policy("scores"))
    raise MiriskError(f"the sweep measures white-box and score attacks; {name!r} is neither")
