"""Train the shipped face prior on the public AT&T people (s21-s40), resumably.

Usage: python scripts/train_face_prior.py OUT_DIR [--steps N] [--seed S] [--threads T]
Writes OUT_DIR/checkpoint.* every 500 steps and a log line every 50; run it again with the
same arguments to resume. `scripts/export_face_prior.py` turns the final checkpoint into
the shipped prior."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from mirisk.data.faces import load_bundled_faces
from mirisk.priors.gan import PriorShape
from mirisk.priors.training import PriorTraining, train_prior

PUBLIC = tuple(f"s{i:02d}" for i in range(21, 41))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    faces = load_bundled_faces()
    public = np.isin(faces.subject_ids, PUBLIC)
    args.out.mkdir(parents=True, exist_ok=True)
    shape = PriorShape(*faces.input_shape)
    with (args.out / "train.log").open("a") as log:
        def write(line: str) -> None:
            log.write(line + "\n")
            log.flush()
        write(f"public photos {int(public.sum())} of {len(PUBLIC)} people; shape {shape}")
        train_prior(faces.images[public], shape, PriorTraining(steps=args.steps, seed=args.seed), args.out, log=write)


if __name__ == "__main__":
    main()
