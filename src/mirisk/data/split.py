"""Deterministic per-subject train / held-out split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mirisk.data.images import ImageDataset
from mirisk.errors import MiriskError


@dataclass(frozen=True)
class SubjectSplit:
    train: np.ndarray
    held_out: np.ndarray


def split_per_subject(dataset: ImageDataset, n_train: int = 7, seed: int = 0) -> SubjectSplit:
    """Put ``n_train`` records of every subject in training and the rest in a held-out set,
    chosen at random with ``seed`` (the same seed always gives the same split)."""
    if n_train < 1:
        raise MiriskError(f"n_train must be at least 1, got {n_train}")
    subjects, codes, counts = np.unique(dataset.subject_ids, return_inverse=True, return_counts=True)
    short = subjects[counts <= n_train]
    if len(short):
        raise MiriskError(
            f"{len(short)} subject(s) have {n_train} or fewer images (e.g. {short[0]}); "
            f"each needs more than n_train={n_train} so some are held out"
        )
    keys = np.random.default_rng(seed).random(len(codes))
    order = np.lexsort((keys, codes))
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.empty(len(codes), dtype=np.int64)
    rank[order] = np.arange(len(codes)) - starts[codes[order]]
    return SubjectSplit(train=np.flatnonzero(rank < n_train), held_out=np.flatnonzero(rank >= n_train))
