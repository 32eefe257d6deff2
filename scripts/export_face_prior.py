"""Export a shipped face prior from a finished training run, and record its quality.

Usage: python scripts/export_face_prior.py RUN_DIR [--name att_faces_public|lfw_public]
Reads RUN_DIR/checkpoint.* (written by scripts/train_face_prior.py, or for lfw_public by
scripts/train_lfw_prior.py, whose public photos are cached in RUN_DIR/public.npz), writes the
EMA generator and its discriminator to src/mirisk/priors/bundled/NAME/ (safetensors + JSON
with the data's fingerprint and people, steps, seed and version), and docs/prior_samples.png
(docs/NAME_samples.png for another name): 16 samples, each beside its nearest public photo,
with the distances that show it does not replay them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from mirisk.data.faces import BUNDLED_PUBLIC, load_faces
from mirisk.data.images import ImageDataset
from mirisk.figures import reconstruction_grid
from mirisk.priors.store import save_prior
from mirisk.priors.training import prior_from_checkpoint

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = {"att_faces_public": "scripts/train_face_prior.py", "lfw_public": "scripts/train_lfw_prior.py"}


def public_photos(run: Path, name: str) -> ImageDataset:
    """The public people the run learnt from."""
    if name == "att_faces_public":
        return load_faces(BUNDLED_PUBLIC)
    with np.load(run / "public.npz", allow_pickle=False) as archive:
        people, labels = tuple(str(person) for person in archive["people"]), archive["labels"]
        images = archive["images"].astype(np.float32) / 255.0
    return ImageDataset(images, labels, np.array(people)[labels], people, "lfw_public")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run", type=Path)
    parser.add_argument("--name", choices=sorted(SCRIPTS), default="att_faces_public")
    args = parser.parse_args()
    public = public_photos(args.run, args.name)
    prior = prior_from_checkpoint(args.run, public)
    prior.metadata["training"]["script"] = SCRIPTS[args.name]
    out = ROOT / "src/mirisk/priors/bundled" / args.name
    save_prior(prior, out, force=True)
    with torch.no_grad():
        samples = prior.generator(torch.randn(16, prior.shape.latent_dim,
                                              generator=torch.Generator().manual_seed(0))).numpy()
    flat_public = torch.as_tensor(public.images.reshape(len(public.images), -1))
    distance = torch.cdist(torch.as_tensor(samples.reshape(16, -1)), flat_public).numpy() / np.sqrt(
        flat_public.shape[1])
    nearest = distance.argmin(1)
    same_person = torch.cat([torch.pdist(flat_public[public.labels == label]) for label in np.unique(public.labels)
                             if (public.labels == label).sum() > 1]).numpy() / np.sqrt(flat_public.shape[1])
    titles = [f"{public.class_names[public.labels[n]][:14]}: {d:.3f}" for n, d in zip(nearest, distance.min(1))]
    figure = ROOT / ("docs/prior_samples.png" if args.name == "att_faces_public" else f"docs/{args.name}_samples.png")
    figure.write_bytes(reconstruction_grid(public.images[nearest], samples, titles, heading=(
        "bottom: prior samples; top: each one's nearest public photo (RMS pixel distance)")))
    print(json.dumps({"nearest_rms": {"min": float(distance.min()), "median": float(np.median(distance.min(1)))},
                      "same_person_rms": {"min": float(np.min(same_person)), "median": float(np.median(same_person))},
                      "nearest_people": len(set(public.labels[nearest].tolist()))}))
    print(f"wrote {out} and {figure}")


if __name__ == "__main__":
    main()
