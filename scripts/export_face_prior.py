"""Export the shipped face prior from a finished training run, and record its quality.

Usage: python scripts/export_face_prior.py RUN_DIR
Reads RUN_DIR/checkpoint.* (written by scripts/train_face_prior.py), writes the EMA generator
and its discriminator to src/mirisk/priors/bundled/att_faces_public/ (safetensors + JSON with
the data's fingerprint, steps, seed and version), and docs/prior_samples.png: 16 samples,
each beside its nearest public photo, with the distances that show it does not replay them."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

from mirisk.data.faces import BUNDLED_PUBLIC, load_faces
from mirisk.figures import reconstruction_grid
from mirisk.priors.store import save_prior
from mirisk.priors.training import prior_from_checkpoint

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src/mirisk/priors/bundled/att_faces_public"
SAMPLES = ROOT / "docs/prior_samples.png"


def main(run: str) -> None:
    public = load_faces(BUNDLED_PUBLIC)
    prior = prior_from_checkpoint(Path(run), public)
    prior.metadata["training"]["script"] = "scripts/train_face_prior.py"
    save_prior(prior, OUT, force=True)
    generator, shape = prior.generator, prior.shape
    with torch.no_grad():
        samples = generator(torch.randn(16, shape.latent_dim, generator=torch.Generator().manual_seed(0))).numpy()
    flat_public = public.images.reshape(len(public.images), -1)
    distance = np.sqrt(((samples.reshape(16, -1)[:, None] - flat_public[None]) ** 2).mean(-1))
    nearest = distance.argmin(1)
    same_person = [np.sqrt(((flat_public[i] - flat_public[j]) ** 2).mean()) for i in range(len(flat_public))
                   for j in range(i + 1, len(flat_public)) if public.labels[i] == public.labels[j]]
    titles = [f"{public.class_names[public.labels[n]]}: {d:.3f}" for n, d in zip(nearest, distance.min(1))]
    SAMPLES.write_bytes(reconstruction_grid(public.images[nearest], samples, titles, heading=(
        "bottom: prior samples; top: each one's nearest public photo (RMS pixel distance)")))
    print(json.dumps({"nearest_rms": {"min": float(distance.min()), "median": float(np.median(distance.min(1)))},
                      "same_person_rms": {"min": float(np.min(same_person)), "median": float(np.median(same_person))},
                      "nearest_people": len(set(public.labels[nearest].tolist()))}))
    print(f"wrote {OUT} and {SAMPLES}")


if __name__ == "__main__":
    main(*sys.argv[1:])
