"""How much of an LFW private person a prior learnt from LFW's public people can hold: each
private person's first training photo is projected into the prior's latent (pixel loss,
with the photo in hand), and the independent judge identifies the projection against that
person's held-out photos. Beside it, the same projection into a linear prior of the same
public people (their first ``--components`` principal components, the floor every learnt
prior must beat), the generator's first and second feature maps (the spaces IF-GMI
searches; as in ``prior_ceiling.py``) and the photo itself.

A diagnostic upper bound, not an attack: it reads private photos, which no attack may.

Run: ``python benchmarks/lfw_prior_ceiling.py --prior runs/lfw_prior [--seeds 0 1 2]
[--steps 300] [--out FILE]``. ``--prior`` is a training folder (its EMA generator is read
from checkpoint.safetensors, so it can be measured while it trains). The private people are
LFW's 62 with 20 photos or more (the first 30 of each), split per person 14/rest by seed;
the public people those with fewer than 10 photos (cached in the training folder's
public.npz). Rates pool 62 people x seeds, 95% Wilson intervals; chance is 1/62.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from mirisk.data.lfw import PRIVATE_PER_PERSON, PRIVATE_TRAIN_PER_PERSON, private_people, read_people
from mirisk.data.split import split_per_subject
from mirisk.metrics.face_judge import face_judge
from mirisk.priors.gan import Generator, PriorShape
from mirisk.runtime import prepare_torch, versions
from prior_ceiling import judged_row, project, summarise

SHARED_LFW = Path(__file__).resolve().parents[2] / "shared" / "data" / "lfw"
SPACES = ("photo", "linear", "latent", "features-1", "features-2")


def ema_generator(folder: Path) -> tuple[Generator, int]:
    """The EMA generator of a prior's training folder, and the step it is at."""
    state = json.loads((folder / "checkpoint.json").read_text())
    generator = Generator(PriorShape(**state["shape"]))
    tensors = load_file(folder / "checkpoint.safetensors")
    generator.load_state_dict({key[4:]: value for key, value in tensors.items() if key.startswith("ema.")})
    return generator.eval().requires_grad_(False), int(state["step"])


def linear_prior(public: np.ndarray, components: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, basis [components, pixels]) of the public photos (torch's randomised PCA, seeded)."""
    torch.manual_seed(0)
    flat = torch.as_tensor(public.reshape(len(public), -1), dtype=torch.float32)
    mean = flat.mean(0)
    _, _, vectors = torch.pca_lowrank(flat - mean, q=components, center=False, niter=4)
    return mean, vectors.T.contiguous()


def project_linear(photos: torch.Tensor, mean: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Each photo's least-squares projection onto the public principal components."""
    flat = photos.reshape(len(photos), -1) - mean
    return ((flat @ basis.T) @ basis + mean).reshape(photos.shape).clamp(0, 1)


def one_seed(seed: int, private, generator: Generator, linear, judge, steps: int, starts: int) -> list[dict]:
    split = split_per_subject(private, n_train=PRIVATE_TRAIN_PER_PERSON, seed=seed)
    train, held_out = private.subset(split.train), private.subset(split.held_out)
    first = np.array([np.flatnonzero(train.labels == c)[0] for c in range(private.n_classes)])
    photos = torch.as_tensor(train.images[first], dtype=torch.float32)
    gallery = judge.embed(held_out.images)
    rows = []
    for space in SPACES:
        if space == "photo":
            images = photos
        elif space == "linear":
            images = project_linear(photos, *linear)
        else:  # the latent (GMI's space) or a feature map of the generator (IF-GMI's)
            images = project(photos, generator, space, steps, starts, torch.Generator().manual_seed(seed))
        rows.append(judged_row(seed, space, images, photos, judge, gallery, held_out.labels, private.n_classes))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prior", type=Path, required=True)
    parser.add_argument("--lfw", type=Path, default=SHARED_LFW)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--starts", type=int, default=4)
    parser.add_argument("--components", type=int, default=256)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/lfw_prior_ceiling.json"))
    args = parser.parse_args()
    prepare_torch()
    generator, step = ema_generator(args.prior)
    with np.load(args.prior / "public.npz", allow_pickle=False) as archive:
        public = archive["images"].astype(np.float32) / 255.0
    linear = linear_prior(public, args.components)
    private = read_people(args.lfw, private_people(args.lfw, PRIVATE_PER_PERSON), f"lfw_private:{args.lfw}")
    judge = face_judge()
    rows = [row for seed in args.seeds
            for row in one_seed(seed, private, generator, linear, judge, args.steps, args.starts)]
    summary = summarise(rows, SPACES)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"settings": {**vars(args), "prior": str(args.prior), "lfw": str(args.lfw),
                                                 "out": str(args.out)},
                                    "prior_step": step, "summary": summary, "runs": rows, "versions": versions()},
                                   indent=2) + "\n")


if __name__ == "__main__":
    main()
