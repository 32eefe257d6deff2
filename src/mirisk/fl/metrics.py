"""How good a batch reconstruction is: each reconstruction paired with its original by the
optimal matching (Hungarian algorithm on MSE), then PSNR, SSIM and MSE per image, label
recovery, and whether the person is re-identified among everyone's other photos."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from mirisk.metrics.face_judge import face_judge
from mirisk.metrics.identification import FaceEvaluator, judge_identification, top_k_hits
from mirisk.metrics.intervals import wilson_interval
from mirisk.metrics.image import psnr, ssim


def match_batch(reconstructions: np.ndarray, originals: np.ndarray) -> np.ndarray:
    """``order`` such that ``reconstructions[order[i]]`` is the one paired with ``originals[i]``."""
    costs = ((originals[:, None] - reconstructions[None]) ** 2).reshape(len(originals), len(reconstructions), -1).mean(-1)
    rows, columns = linear_sum_assignment(costs)
    return columns[np.argsort(rows)]


def label_accuracy(recovered: np.ndarray, true: np.ndarray) -> float:
    """Share of the batch's labels recovered, as multisets (the batch order is unknown)."""
    common = Counter(recovered.tolist()) & Counter(true.tolist())
    return sum(common.values()) / len(true)


def reconstruction_metrics(reconstructions: np.ndarray, originals: np.ndarray, true_labels: np.ndarray,
                           recovered_labels: np.ndarray, gallery: np.ndarray, gallery_subjects: np.ndarray,
                           subjects: np.ndarray, n_subjects: int) -> tuple[dict[str, Any], np.ndarray]:
    """Metrics on the matched batch, and the reconstructions in the originals' order.
    Re-identification: the eigenfaces evaluator used across mirisk, fitted on everyone's
    *other* photos (the client's own are left out), names the person in each reconstruction;
    the independent judge (dlib's face recogniser, ``metrics.independent``) does the same
    against those photos, beside it."""
    order = match_batch(reconstructions, originals)
    matched = torch.as_tensor(reconstructions[order])
    truth = torch.as_tensor(originals)
    per_psnr, per_ssim = psnr(matched, truth).numpy(), ssim(matched, truth).numpy()
    per_mse = ((matched - truth) ** 2).flatten(1).mean(1).numpy()
    evaluator = FaceEvaluator().fit(gallery, gallery_subjects)
    reidentified = top_k_hits(evaluator.scores(reconstructions[order]), subjects, 1)
    judge = face_judge()
    judged = judge_identification(judge.embed(reconstructions[order]), subjects, judge.embed(gallery),
                                  gallery_subjects, n_subjects, "everyone's other photos (the client's own left out)")
    metrics = {
        "psnr_mean": float(per_psnr.mean()), "ssim_mean": float(per_ssim.mean()), "mse_mean": float(per_mse.mean()),
        "label_accuracy": label_accuracy(recovered_labels, true_labels),
        "reid_top1": float(reidentified.mean()), "reid_chance": 1 / n_subjects,
        "reid_top1_ci": list(wilson_interval(int(reidentified.sum()), len(reidentified))),
        "independent": judged.to_json(),
        "per_image": {"psnr": per_psnr.tolist(), "ssim": per_ssim.tolist(), "mse": per_mse.tolist(),
                      "reidentified": reidentified.tolist()},
    }
    return metrics, reconstructions[order]
