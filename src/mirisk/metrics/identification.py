"""Does a reconstruction identify its person? Three independent measures, each with chance.

1. An independent evaluator (eigenfaces: PCA + logistic regression; Turk & Pentland 1991),
   a model family unlike the target's, trained on *held-out* photos of the same people,
   classifies each reconstruction; top-1 and top-5 (the automated stand-in for the
   Mechanical Turk judges of Fredrikson et al. 2015).
2. Nearest-subject re-identification: every person is ranked by the best similarity of
   any of their real photos to the reconstruction (pixel correlation, and SSIM).
3. SSIM and PSNR of each reconstruction to its person's closest training photo.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer

from mirisk.metrics.image import correlation_matrix, psnr, ssim, ssim_matrix


def top_k_hits(scores: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Whether each row's true label is among its ``k`` highest scores."""
    k = min(k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return (top == labels[:, None]).any(axis=1)


def rank_of_true(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """1-based rank of the true label among each row's scores (1 = best)."""
    true = scores[np.arange(len(labels)), labels]
    return 1 + (scores > true[:, None]).sum(axis=1)


def standardise_images(flat: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per image: recognition that ignores brightness and contrast."""
    centred = flat - flat.mean(axis=1, keepdims=True)
    return centred / np.maximum(centred.std(axis=1, keepdims=True), 1e-8)


def chance(n_classes: int, k: int) -> float:
    return min(k, n_classes) / n_classes


@dataclass
class FaceEvaluator:
    """Eigenfaces evaluator, independent of the target: fit it on held-out photos. Each image
    is standardised first, so brightness and contrast do not decide identity."""

    n_components: int = 60
    seed: int = 0

    def fit(self, images: np.ndarray, labels: np.ndarray) -> "FaceEvaluator":
        components = min(self.n_components, len(images) - 1)
        self.pipeline_: Pipeline = make_pipeline(
            FunctionTransformer(standardise_images),
            PCA(n_components=components, whiten=True, random_state=self.seed),
            LogisticRegression(max_iter=2000, C=1.0),
        )
        self.pipeline_.fit(images.reshape(len(images), -1), labels)
        self.n_classes_ = int(labels.max()) + 1
        return self

    def scores(self, images: np.ndarray) -> np.ndarray:
        """``[N, n_classes]`` class probabilities (columns for classes unseen in fitting stay 0)."""
        probabilities = self.pipeline_.predict_proba(images.reshape(len(images), -1))
        full = np.zeros((len(images), self.n_classes_))
        full[:, self.pipeline_.classes_] = probabilities
        return full

    def accuracy(self, images: np.ndarray, labels: np.ndarray) -> float:
        return float((self.scores(images).argmax(1) == labels).mean())


def subject_scores(similarity: torch.Tensor, gallery_labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Reduce a ``[T, gallery]`` similarity matrix to ``[T, n_classes]``: each person's best photo."""
    scores = torch.full((similarity.shape[0], n_classes), -torch.inf, dtype=similarity.dtype)
    index = torch.as_tensor(gallery_labels).expand_as(similarity)
    scores.scatter_reduce_(1, index, similarity, reduce="amax")
    return scores.numpy()


def identification_metrics(
    reconstructions: np.ndarray,
    target_labels: np.ndarray,
    evaluator: FaceEvaluator,
    gallery: np.ndarray,
    gallery_labels: np.ndarray,
    in_training: np.ndarray,
    n_classes: int,
) -> dict[str, object]:
    """All identification numbers for a batch of reconstructions, with chance levels and
    per-target detail. ``gallery`` holds every real photo of every person; ``in_training``
    marks the ones the target was trained on (for the closest-training-photo SSIM)."""
    recon = torch.as_tensor(reconstructions, dtype=torch.float32)
    photos = torch.as_tensor(gallery)
    evaluator_scores = evaluator.scores(reconstructions)
    correlation = subject_scores(correlation_matrix(recon, photos), gallery_labels, n_classes)
    similarity = ssim_matrix(recon, photos)
    structural = subject_scores(similarity, gallery_labels, n_classes)

    own = torch.as_tensor(gallery_labels)[None, :] == torch.as_tensor(target_labels)[:, None]
    eligible = own & torch.as_tensor(in_training)[None, :]
    closest = photos[similarity.masked_fill(~eligible, -torch.inf).argmax(1)]
    closest_ssim, closest_psnr = ssim(recon, closest), psnr(recon, closest)

    return {
        "identification_top1": float(top_k_hits(evaluator_scores, target_labels, 1).mean()),
        "identification_top5": float(top_k_hits(evaluator_scores, target_labels, 5).mean()),
        "reid_top1": float(top_k_hits(correlation, target_labels, 1).mean()),
        "reid_top5": float(top_k_hits(correlation, target_labels, 5).mean()),
        "reid_ssim_top1": float(top_k_hits(structural, target_labels, 1).mean()),
        "reid_ssim_top5": float(top_k_hits(structural, target_labels, 5).mean()),
        "ssim_mean": float(closest_ssim.mean()),
        "psnr_mean": float(closest_psnr.mean()),
        "chance_top1": chance(n_classes, 1),
        "chance_top5": chance(n_classes, 5),
        "per_target": {
            "label": target_labels.tolist(),
            "evaluator_rank": rank_of_true(evaluator_scores, target_labels).tolist(),
            "reid_rank": rank_of_true(correlation, target_labels).tolist(),
            "ssim_closest": closest_ssim.tolist(),
        },
    }
