"""The audit plan's types: the threat models to consider and the attack units that test
them. Each kind of model builds its own units (``mirisk.audit.kinds``); the settings come
from flags, or a TOML file for the details."""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mirisk.errors import MiriskError
from mirisk.threats import AccessLevel
from mirisk.validation import check_seed, check_switch, check_whole

# From most to least revealing: an attacker at one level can also do all that the levels
# after it allow (with scores, one can read the top label).
ACCESS_ORDER = (AccessLevel.WHITE_BOX, AccessLevel.SCORES, AccessLevel.TOP_K, AccessLevel.LABEL_ONLY)
# Config keys for every kind of model; each kind adds its own (``AuditCase.config_keys``).
COMMON_KEYS = frozenset({"access", "budget", "redact", "seed", "epsilons"})


@dataclass(frozen=True)
class AttackUnit:
    """One attack run: a stable id (its folder name), the attack, the threat model it tests,
    the output policy it goes through (None: white-box) and its settings."""

    id: str
    attack: str
    access: AccessLevel
    policy: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "access": self.access.value}

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> AttackUnit:
        return cls(**{**document, "access": AccessLevel(document["access"])})


@dataclass(frozen=True)
class AuditPlan:
    """Threat models in, attack units out, with the threat models that cannot be tested
    on this kind of model and why."""

    model_kind: str
    accesses: tuple[AccessLevel, ...]
    budget: int | None
    units: tuple[AttackUnit, ...]
    skipped: dict[str, str]
    settings: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "model_kind": self.model_kind,
            "accesses": [access.value for access in self.accesses],
            "budget": self.budget,
            "units": [unit.as_dict() for unit in self.units],
            "skipped": self.skipped,
            "settings": self.settings,
        }

    def fingerprint(self) -> str:
        """Changes whenever anything that shapes a result changes (resuming needs equality)."""
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()[:16]


def parse_accesses(text: str | list[str]) -> tuple[AccessLevel, ...]:
    """'white-box,scores' (or a list) -> access levels in the canonical order."""
    names = [part.strip() for part in (text.split(",") if isinstance(text, str) else text) if str(part).strip()]
    valid = {access.value: access for access in AccessLevel}
    unknown = [name for name in names if name not in valid]
    if unknown or not names:
        raise MiriskError(f"unknown access level(s) {', '.join(unknown) or '(none given)'}; "
                          f"choose from {', '.join(valid)}")
    return tuple(access for access in ACCESS_ORDER if access.value in names)


def read_toml(path: str | Path) -> dict[str, Any]:
    """A TOML file's top-level table (its keys are checked against the kinds' settings)."""
    path = Path(path)
    if not path.is_file():
        raise MiriskError(f"config file not found: {path}")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise MiriskError(f"{path} is not valid TOML: {error}") from None


def flag(value: Any, name: str) -> bool:
    """A config switch, which must be a TOML boolean."""
    return check_switch(name, value)


def whole(config: dict[str, Any], key: str, default: int, minimum: int = 1) -> int:
    """A whole-number setting of at least ``minimum`` (TOML integers only, not text or booleans)."""
    return check_whole(key, config.get(key, default), minimum)


def seed_of(config: dict[str, Any]) -> int:
    """The config's seed (default 0): a whole number in 0..2**32-1."""
    return check_seed("seed", config.get("seed", 0))


def epsilons(config: dict[str, Any], default: tuple[float, ...]) -> list[float]:
    """The DP-SGD budgets to retrain at: a list of finite positive numbers."""
    values = config.get("epsilons", default)
    if not isinstance(values, (list, tuple)) or any(
            isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf")
            for value in values):
        raise MiriskError(f"epsilons must be a list of positive finite numbers, got {values!r}")
    return [float(value) for value in values]
