"""Train the LFW colour face prior on LFW's public people (fewer than 10 photos each), resumably.

Usage: python scripts/train_lfw_prior.py OUT_DIR [--lfw DIR] [--steps N] [--seed S] [--threads T]
       [--width W]
The public photos (8,909 of 5,591 people, cropped as mirisk.data.lfw states) are cached in
OUT_DIR/public.npz on the first run. Writes OUT_DIR/checkpoint.* every 500 steps and a log line
every 50 to OUT_DIR/train.log; run it again with the same arguments to resume."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from mirisk.data.lfw import public_people, read_people
from mirisk.priors.gan import PriorShape
from mirisk.priors.training import PriorTraining, train_prior

SHARED_LFW = Path(__file__).resolve().parents[2] / "shared" / "data" / "lfw"


def public_images(lfw: Path, cache: Path) -> np.ndarray:
    """The public people's crops, read once and cached as 8-bit pixels."""
    if not cache.exists():
        public = read_people(lfw, public_people(lfw), f"lfw_public:{lfw}")
        np.savez_compressed(cache, images=(public.images * 255).round().astype(np.uint8),
                            people=np.array(public.class_names), labels=public.labels)
    with np.load(cache, allow_pickle=False) as archive:
        return archive["images"].astype(np.float32) / 255.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--lfw", type=Path, default=SHARED_LFW)
    parser.add_argument("--steps", type=int, default=40000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--width", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    images = public_images(args.lfw, args.out / "public.npz")
    shape = PriorShape(*images.shape[1:], generator_width=args.width, discriminator_width=args.width)
    with (args.out / "train.log").open("a") as log:
        def write(line: str) -> None:
            log.write(line + "\n")
            log.flush()
        write(f"public photos {len(images)}; shape {shape}")
        train_prior(images, shape, PriorTraining(steps=args.steps, seed=args.seed), args.out, log=write)


if __name__ == "__main__":
    main()
