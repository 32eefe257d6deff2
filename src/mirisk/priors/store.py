"""Save and load face priors as safetensors + JSON (never a pickle), with a fingerprint of
the weights and of the public data they were learnt from; and the check that a prior may be
used against a model: the same image shape, and none of the model's people among its own."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load, save

from mirisk.artifacts import prepare_output_dir, read_json, write_bytes, write_json
from mirisk.errors import MiriskError
from mirisk.models.target import TargetModel
from mirisk.priors.gan import Discriminator, Generator, PriorShape
from mirisk.runtime import convolution_layout

FORMAT = "mirisk-prior/1"
WEIGHTS, METADATA = "prior.safetensors", "prior.json"
BUNDLED_PRIOR = "bundled:att_faces_public"
BUNDLED = "bundled:"  # a prior shipped in the package: bundled:<folder under mirisk/priors/bundled>


@dataclass
class FacePrior:
    """A generator (with its discriminator) learnt from public faces, and its record."""

    generator: Generator
    discriminator: Discriminator
    metadata: dict[str, Any]

    @property
    def shape(self) -> PriorShape:
        return self.generator.shape

    @property
    def people(self) -> tuple[str, ...]:
        return tuple(self.metadata["data"]["people"])


def save_prior(prior: FacePrior, folder: str | Path, force: bool = False) -> Path:
    """``folder/prior.safetensors`` and ``folder/prior.json``, owner-only; the JSON records the weights' SHA-256."""
    folder = prepare_output_dir(folder, force=force)
    tensors = {f"generator.{k}": v.detach().contiguous() for k, v in prior.generator.state_dict().items()}
    tensors |= {f"discriminator.{k}": v.detach().contiguous() for k, v in prior.discriminator.state_dict().items()}
    content = save(tensors, metadata={"format": FORMAT})
    write_bytes(folder / WEIGHTS, content)
    write_json(folder / METADATA, {"format": FORMAT, **prior.metadata, "shape": prior.shape.as_dict(),
                                   "weights_sha256": hashlib.sha256(content).hexdigest()})
    return folder


def bundled_priors() -> tuple[str, ...]:
    """The priors shipped in the package, as ``bundled:<name>``."""
    root = resources.files("mirisk.priors") / "bundled"
    return tuple(sorted(f"{BUNDLED}{entry.name}" for entry in root.iterdir() if (entry / METADATA).is_file()))


def _read(folder: str) -> tuple[dict[str, Any], bytes]:
    if folder.startswith(BUNDLED):
        if folder not in bundled_priors():
            raise MiriskError(f"no shipped prior {folder}; the package ships {', '.join(bundled_priors())}")
        root = resources.files("mirisk.priors") / "bundled" / folder.removeprefix(BUNDLED)
        return read_json(Path(str(root / METADATA))), (root / WEIGHTS).read_bytes()
    path = Path(folder)
    if not (path / METADATA).is_file() or not (path / WEIGHTS).is_file():
        raise MiriskError(f"{path} is not a mirisk prior: expected {WEIGHTS} and {METADATA} "
                          "(train one with `mirisk train prior`)")
    return read_json(path / METADATA), (path / WEIGHTS).read_bytes()


def load_prior(folder: str | Path = BUNDLED_PRIOR) -> FacePrior:
    """A prior folder, or a shipped one (``bundled:att_faces_public``), its weights checked against its record."""
    metadata, content = _read(str(folder))
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise MiriskError(f"{folder}: not a {FORMAT} prior")
    if hashlib.sha256(content).hexdigest() != metadata.get("weights_sha256"):
        raise MiriskError(f"{folder}: the weights do not match the fingerprint in {METADATA}")
    shape = PriorShape(**metadata["shape"])
    tensors = load(content)
    generator, discriminator = Generator(shape), Discriminator(shape)
    generator.load_state_dict({k[10:]: v for k, v in tensors.items() if k.startswith("generator.")})
    discriminator.load_state_dict({k[14:]: v for k, v in tensors.items() if k.startswith("discriminator.")})
    convolution_layout(generator.eval().requires_grad_(False), torch.zeros(2, shape.latent_dim))
    convolution_layout(discriminator.eval().requires_grad_(False), torch.zeros(2, shape.channels, *shape.half))
    return FacePrior(generator, discriminator, {k: v for k, v in metadata.items() if k != "shape"})


def check_prior_fits(prior: FacePrior, target: TargetModel) -> None:
    """Refuse a prior of another image shape, or one learnt from any person the model knows."""
    check_prior_fits_faces(prior, tuple(target.input_shape), target.class_names)


def check_prior_fits_faces(prior: FacePrior, input_shape: tuple[int, ...], people: tuple[str, ...]) -> None:
    """Refuse a prior of another image shape than ``input_shape``, or one learnt from any of
    ``people``."""
    shape = (prior.shape.channels, prior.shape.height, prior.shape.width)
    if shape != tuple(input_shape):
        raise MiriskError(f"the prior makes {shape} images; the model expects {tuple(input_shape)}")
    overlap = sorted(set(prior.people) & set(people))
    if overlap:
        raise MiriskError(f"the prior was learnt from {len(overlap)} of the model's own people (e.g. {overlap[0]}); "
                          "a prior must come from other people: train one with `mirisk train prior --data DIR`")
