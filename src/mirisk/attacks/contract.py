"""The one contract every attack under :mod:`mirisk.attacks` keeps.

An attack is a frozen settings object (its paper's hyper-parameters and whatever auxiliary
knowledge its threat model grants: an image basis, a face prior, the attacker's own data)
with one method::

    attack.run(access, targets, *, generator=None, progress=None) -> AttackResult

(an attribute attack returns an :class:`~mirisk.attacks.attribute.AttributeInference`).
``access`` is what the threat model lets the attacker reach: the weights or a query oracle
of :mod:`mirisk.access` (with its output policy and budget), or the update a federated
server recorded (:class:`~mirisk.fl.record.ServerRecord`). ``targets`` names who or what to
reconstruct, ``generator`` is the only source of randomness (None: a generator seeded 0, so
an unseeded run is reproducible; the caller's global random generators are left as they
were) and ``progress(step)`` a callback. No attack spends past the oracle's budget: the
image attacks stop cleanly when it runs out, keeping their best; an attribute attack, which
needs every answer, is refused (``QueryBudgetExhausted``) before it would pass it.
:mod:`mirisk.attacks.registry` names every attack; ``tests/attacks/test_contract.py`` runs
each through a tiny model (return type, budget, determinism under a seed, the global
generators untouched), as scikit-learn's estimator checks do."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any, Protocol

import torch

from mirisk.attacks.result import AttackResult

Progress = Callable[[int], None]


class Attack(Protocol):
    """What :func:`run` needs of an attack (see the module docstring)."""

    def run(self, access: Any, targets: Any, *, generator: torch.Generator | None = None,
            progress: Progress | None = None) -> AttackResult: ...


def attack_generator(generator: torch.Generator | None) -> torch.Generator:
    """The caller's generator, or a fresh one seeded 0."""
    return generator if generator is not None else torch.Generator().manual_seed(0)


def seeded(seed: int) -> torch.Generator:
    """A fresh CPU generator seeded ``seed``: how callers holding a seed pass randomness in."""
    return torch.Generator().manual_seed(seed)


def trainer_seed(generator: torch.Generator) -> int:
    """The seed ``generator`` was made with, for the library parts that take a seed (the
    trainers): a caller's ``seeded(s)`` trains as ``seed=s`` did."""
    return generator.initial_seed()


def settings_of(attack: Any) -> dict[str, Any]:
    """An attack's hyper-parameters for its result: its dataclass fields, less the
    auxiliary objects (bases, priors, data), which are not compared and are named apart."""
    return {field.name: getattr(attack, field.name) for field in fields(attack) if field.compare}
