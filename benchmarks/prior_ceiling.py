"""How much of a person the shipped face prior can hold: project each private person's own
training photo into the prior (by pixel loss, with the photo in hand) and let the independent
judge identify the projection against that person's held-out photos.

This is a diagnostic upper bound, not an attack: it reads private photos, which no attack
may. An attack that only searches the prior cannot be recognised more often than the
prior's best projection of the person's own photo is. Three search spaces are measured: the
latent (GMI's space), the generator's first feature map and its second (the intermediate
features IF-GMI searches: Qiu et al., "A Closer Look at GAN Priors: Exploiting Intermediate
Features for Enhanced Model Inversion Attacks", ECCV 2024), beside the photo itself.

Run: ``python benchmarks/prior_ceiling.py [--seeds 0 1 2] [--steps 300]``. The split of
each seed is the one the generative benchmark's target uses; rates pool 20 people x seeds
with a 95% Wilson interval.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from mirisk.data.faces import BUNDLED_PRIVATE, load_faces
from mirisk.data.split import split_per_subject
from mirisk.metrics.face_judge import face_judge
from mirisk.metrics.identification import judge_identification
from mirisk.priors.gan import Generator
from mirisk.priors.store import load_prior
from mirisk.runtime import prepare_torch, versions
from seeded_runs import pooled_rate

SPACES = ("photo", "latent", "features-1", "features-2")


def search_space(generator: Generator, space: str):
    """The starting code for ``space`` (from a latent) and the function that decodes it."""
    if space == "latent":
        return (lambda latent: latent), generator
    layer = int(space.split("-")[1])
    return (lambda latent: generator.features(latent, layer),
            lambda code: generator.from_features(code, layer))


def project(photos: torch.Tensor, generator: Generator, space: str, steps: int, starts: int,
            rng: torch.Generator) -> torch.Tensor:
    """Each photo's best pixel-loss projection into ``space`` over ``starts`` random latents."""
    start, decode = search_space(generator, space)
    n = len(photos)
    with torch.no_grad():
        code = start(torch.randn(n * starts, generator.shape.latent_dim, generator=rng))
    code.requires_grad_(True)
    optimiser = torch.optim.Adam([code], lr=0.05 if space == "latent" else 0.02)
    target = photos.repeat_interleave(starts, dim=0)
    for _ in range(steps):
        loss = ((decode(code) - target) ** 2).mean(dim=(1, 2, 3))
        optimiser.zero_grad(set_to_none=True)
        loss.sum().backward()
        optimiser.step()
    with torch.no_grad():
        images = decode(code)
        error = ((images - target) ** 2).mean(dim=(1, 2, 3)).view(n, starts)
        best = torch.arange(n) * starts + error.argmin(1)
    return images[best]


def judged_row(seed: int, space: str, images: torch.Tensor, photos: torch.Tensor, judge, gallery,
               gallery_labels: np.ndarray, n_classes: int) -> dict:
    """One search space's projections judged against the held-out photos (and printed)."""
    labels = np.arange(len(photos))
    judged = judge_identification(judge.embed(images.numpy()), labels, gallery, gallery_labels, n_classes,
                                  "held-out photos")
    row = {"seed": seed, "space": space, "n": len(labels), "judge_top1": judged.identification_top1,
           "face_rate": judged.face_rate, "rms_to_photo": float(((images - photos) ** 2).mean(dim=(1, 2, 3)).sqrt().mean())}
    print(json.dumps(row), flush=True)
    return row


def summarise(rows: list[dict], spaces: tuple[str, ...]) -> list[dict]:
    """Each space's rates pooled over the seeds, with 95% Wilson intervals (and printed)."""
    summary = []
    for space in spaces:
        group = [row for row in rows if row["space"] == space]
        summary.append({"space": space,
                        **{key: pooled_rate([row[key] for row in group], [row["n"] for row in group])
                           for key in ("judge_top1", "face_rate")},
                        "rms_to_photo": float(np.mean([row["rms_to_photo"] for row in group]))})
        top1 = summary[-1]["judge_top1"]
        print(f"{space:11s} judge {top1['rate']:.1%} [{top1['ci'][0]:.1%}, {top1['ci'][1]:.1%}] "
              f"faces {summary[-1]['face_rate']['rate']:.0%} rms {summary[-1]['rms_to_photo']:.3f}")
    return summary


def one_seed(seed: int, steps: int, starts: int) -> list[dict]:
    faces, prior = load_faces(BUNDLED_PRIVATE), load_prior()
    split = split_per_subject(faces, n_train=7, seed=seed)
    train, held_out = faces.subset(split.train), faces.subset(split.held_out)
    first = np.array([np.flatnonzero(train.labels == c)[0] for c in range(faces.n_classes)])
    photos = torch.as_tensor(train.images[first], dtype=torch.float32)
    judge = face_judge()
    gallery = judge.embed(held_out.images)
    rows = []
    for space in SPACES:
        rng = torch.Generator().manual_seed(seed)
        images = photos if space == "photo" else project(photos, prior.generator, space, steps, starts, rng)
        rows.append(judged_row(seed, space, images, photos, judge, gallery, held_out.labels, faces.n_classes))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--starts", type=int, default=4)
    parser.add_argument("--out", default="benchmarks/results/prior_ceiling.json")
    args = parser.parse_args()
    prepare_torch()
    rows = [row for seed in args.seeds for row in one_seed(seed, args.steps, args.starts)]
    summary = summarise(rows, SPACES)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"settings": vars(args), "summary": summary, "runs": rows,
                                          "versions": versions()}, indent=2) + "\n")


if __name__ == "__main__":
    main()
