"""The audit plan: which threat models to consider, and every attack that applies to them
for the kind of model under audit. Read from flags, or a TOML file for the details."""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from mirisk.access.policies import parse_policy
from mirisk.attacks.decoder import DecoderSettings
from mirisk.errors import MiriskError
from mirisk.pipelines.federated import configured_attack
from mirisk.threats import AccessLevel

# From most to least revealing: an attacker at one level can also do all that the levels
# after it allow (with scores, one can read the top label).
ACCESS_ORDER = (AccessLevel.WHITE_BOX, AccessLevel.SCORES, AccessLevel.TOP_K, AccessLevel.LABEL_ONLY)
MODEL_KINDS = ("image", "tabular", "segmentation", "federated")
# The DP-SGD budgets retrained and measured by default: on the 280 bundled face photos a
# model keeps some accuracy only at large epsilon (BENCHMARKS.md), the IWPC model down to 0.1.
IMAGE_EPSILONS = (50.0, 8.0)
TABULAR_EPSILONS = (1.0, 0.1)
CONFIG_KEYS = {
    "access", "budget", "redact", "seed", "top_k", "miface_iterations", "blackbox_iterations",
    "labelonly_iterations", "sensitive", "known", "epsilons", "decoder_epochs", "decoder_subjects", "policies",
    "gradient_attacks", "gradient_iterations", "gradient_restarts", "baseline",
}
# Config keys that apply to one kind of model only; any other is for every kind.
KIND_KEYS = {
    "top_k": "image", "baseline": "image", "miface_iterations": "image", "blackbox_iterations": "image", "labelonly_iterations": "image",
    "policies": "image", "sensitive": "tabular", "known": "tabular", "decoder_epochs": "segmentation",
    "decoder_subjects": "segmentation", "gradient_attacks": "federated", "gradient_iterations": "federated",
    "gradient_restarts": "federated",
}
# The output policies compared with full scores by default (beside top-k and labels only,
# which the threat models already test): rounding, noise and a reverse sigmoid.
IMAGE_POLICIES = ("round:2", "round:1", "noise:laplace:0.05", "reverse-sigmoid:0.5,0.1")
# What a segmenter reveals at each access level: an attacker with the weights reads the
# logits; a served model gives per-pixel probabilities or a label map.
SEGMENTATION_OUTPUTS = {AccessLevel.WHITE_BOX: "logits", AccessLevel.SCORES: "probs", AccessLevel.LABEL_ONLY: "labels"}


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


def read_config(path: str | Path) -> dict[str, Any]:
    """A TOML file with any of :data:`CONFIG_KEYS` at the top level."""
    path = Path(path)
    if not path.is_file():
        raise MiriskError(f"config file not found: {path}")
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise MiriskError(f"{path} is not valid TOML: {error}") from None
    unknown = sorted(set(config) - CONFIG_KEYS)
    if unknown:
        raise MiriskError(f"{path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(CONFIG_KEYS))}")
    return config


def build_plan(model_kind: str, accesses: tuple[AccessLevel, ...], budget: int | None,
               config: dict[str, Any], gradients: bool = True) -> AuditPlan:
    """Every attack that applies to ``model_kind`` under each requested access level
    (without ``gradients``, e.g. an ONNX file, white-box attacks cannot run)."""
    if model_kind not in MODEL_KINDS:
        raise MiriskError(f"cannot audit a {model_kind!r} model; mirisk audits {', '.join(MODEL_KINDS)} models")
    if budget is not None and budget < 1:
        raise MiriskError(f"the query budget must be at least 1, got {budget}")
    foreign = sorted(key for key, value in config.items()
                     if KIND_KEYS.get(key, model_kind) != model_kind and value not in (None, []))
    if foreign:
        raise MiriskError(f"setting(s) {', '.join(foreign)} do not apply to a {model_kind} model; remove them from "
                          "the config")
    builder = {"image": _image_units, "tabular": _tabular_units, "segmentation": _segmentation_units,
               "federated": _federated_units}[model_kind]
    units, skipped, settings = builder(accesses, budget, config)
    if not gradients and AccessLevel.WHITE_BOX in accesses and model_kind == "image":
        units = [unit for unit in units if unit.access is not AccessLevel.WHITE_BOX]
        skipped["white-box"] = ("this model file gives no gradients (it can only be queried); import it as "
                                "TorchScript or .pt2 to test a white-box attacker")
    if not units:
        raise MiriskError(f"no attack applies to this {model_kind} model under {', '.join(a.value for a in accesses)}: "
                          + "; ".join(f"{access}: {reason}" for access, reason in skipped.items()))
    return AuditPlan(model_kind, accesses, budget, tuple(units), skipped, settings)


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise MiriskError(f"{name} must be true or false, got {value!r}")
    return value


def _image_units(accesses, budget, config):
    top_k = int(config.get("top_k", 3))
    settings = {
        "seed": int(config.get("seed", 0)),
        "miface_iterations": int(config.get("miface_iterations", 1000)),
        "blackbox_iterations": int(config.get("blackbox_iterations", 100)),
        "labelonly_iterations": int(config.get("labelonly_iterations", 100)),
        "top_k": top_k,
        "baseline": _flag(config.get("baseline", True), "baseline"),
        "epsilons": [float(e) for e in config.get("epsilons", IMAGE_EPSILONS)],
        "policies": [parse_policy(str(spec)).spec for spec in config.get("policies", IMAGE_POLICIES)],
    }
    by_access = {
        AccessLevel.WHITE_BOX: AttackUnit("white-box-miface", "miface", AccessLevel.WHITE_BOX,
                                          params={"iterations": settings["miface_iterations"]}),
        AccessLevel.SCORES: AttackUnit("scores-blackbox", "blackbox", AccessLevel.SCORES, "scores",
                                       {"iterations": settings["blackbox_iterations"], "budget": budget}),
        AccessLevel.TOP_K: AttackUnit(f"top{top_k}-blackbox", "blackbox", AccessLevel.TOP_K, f"topk:{top_k}",
                                      {"iterations": settings["blackbox_iterations"], "budget": budget}),
        AccessLevel.LABEL_ONLY: AttackUnit("label-only-repulsion", "labelonly", AccessLevel.LABEL_ONLY, "label",
                                           {"iterations": settings["labelonly_iterations"], "budget": budget}),
    }
    deployment = config.get("deployment")
    if deployment is not None:  # the deployed access level goes through the live gateway, under its policy
        settings["deployment"] = deployment
        access = AccessLevel(deployment["access"])
        by_access[access] = replace(by_access[access], id=f"gateway-{by_access[access].id}",
                                    policy=deployment["policy"])
    return [by_access[access] for access in accesses], {}, settings


def _tabular_units(accesses, budget, config):
    settings = {
        "seed": int(config.get("seed", 0)),
        "sensitive": config.get("sensitive"),
        "known": config.get("known"),
        "epsilons": [float(e) for e in config.get("epsilons", TABULAR_EPSILONS)],
    }
    units, skipped = [], {}
    for access in accesses:
        if access is AccessLevel.TOP_K:
            skipped[access.value] = "a regression model returns one value; there is no top-k to restrict to"
            continue
        if access is AccessLevel.WHITE_BOX:
            skipped[access.value] = ("the attribute attacks need only the model's outputs, so white-box access adds "
                                     "nothing they use; the scores threat model covers it")
            continue
        served = "value" if access is AccessLevel.SCORES else "band"
        units.append(AttackUnit(f"{access.value}-fredrikson", "fredrikson", access, served,
                                {"outcome": "true", "budget": budget}))
        units.append(AttackUnit(f"{access.value}-learned", "learned", access, served,
                                {"outcome": "true", "budget": budget}))
        if access is AccessLevel.SCORES:
            units.append(AttackUnit("scores-fredrikson-model-outcome", "fredrikson", access, served,
                                    {"outcome": "model", "budget": budget}))
    return units, skipped, settings


def policy_units(plan: AuditPlan) -> list[AttackUnit]:
    """The plan's extra output policies (those its threat models do not test already) as
    attack units: the score black-box attack through each policy that still reveals scores,
    the label-only attack through the others."""
    units = []
    tested = {unit.policy for unit in plan.units}
    for spec in (spec for spec in plan.settings.get("policies", []) if spec not in tested):
        access = parse_policy(spec).access
        attack, key = ("labelonly", "labelonly_iterations") if access is AccessLevel.LABEL_ONLY else (
            "blackbox", "blackbox_iterations")
        slug = "".join(character if character.isalnum() or character == "." else "-" for character in spec)
        units.append(AttackUnit(f"policy-{slug}-{attack}", attack, access, spec,
                                {"iterations": plan.settings[key], "budget": plan.budget}))
    return units


def _segmentation_units(accesses, budget, config):
    settings = {
        "seed": int(config.get("seed", 0)),
        "decoder_epochs": int(config.get("decoder_epochs", DecoderSettings().epochs)),
        "decoder_subjects": None if config.get("decoder_subjects") is None else int(config["decoder_subjects"]),
        "epsilons": [],
    }
    if config.get("epsilons"):
        raise MiriskError("the audit retrains image classifiers and the IWPC model with DP-SGD, not segmenters; "
                          "remove epsilons from the config")
    if settings["decoder_epochs"] < 1 or (settings["decoder_subjects"] is not None and settings["decoder_subjects"] < 1):
        raise MiriskError("decoder_epochs and decoder_subjects must be at least 1")
    units, skipped = [], {}
    for access in accesses:
        output = SEGMENTATION_OUTPUTS.get(access)
        if output is None:
            skipped[access.value] = ("a segmenter answers every pixel; mirisk serves per-pixel probabilities "
                                     "(scores) or label maps (label-only), not a per-pixel top-k")
            continue
        units.append(AttackUnit(f"{access.value}-decoder", "decoder", access,
                                None if access is AccessLevel.WHITE_BOX else output,
                                {"output": output, "epochs": settings["decoder_epochs"], "budget": budget}))
    return units, skipped, settings


def _federated_units(accesses, budget, config):
    if budget is not None:
        raise MiriskError("--budget caps black-box queries; the server of a federated round makes none (drop it)")
    if config.get("epsilons"):
        raise MiriskError("the audit retrains image classifiers and the IWPC model with DP-SGD, not federated rounds; "
                          "remove epsilons from the config (the round's update noise is checked instead)")
    settings = {
        "seed": int(config.get("seed", 0)),
        "gradient_attacks": [str(name) for name in config.get("gradient_attacks", ["inverting-gradients"])],
        "gradient_iterations": int(config.get("gradient_iterations", 1000)),
        "gradient_restarts": int(config.get("gradient_restarts", 2)),
        "epsilons": [],
    }
    for name in settings["gradient_attacks"]:
        configured_attack(name, settings["gradient_iterations"], settings["gradient_restarts"])
    units, skipped = [], {}
    for access in accesses:
        if access is not AccessLevel.WHITE_BOX:
            skipped[access.value] = ("a federated round hands the server the weights and the update, not query "
                                     "access; audit the trained model itself for this threat model")
            continue
        units += [AttackUnit(f"white-box-{name}", name, access, None,
                             {"iterations": settings["gradient_iterations"], "restarts": settings["gradient_restarts"]})
                  for name in settings["gradient_attacks"]]
    return units, skipped, settings
