"""Batch matching pairs each reconstruction with its own original; labels compare as multisets."""

import numpy as np

from mirisk.fl.metrics import label_accuracy, match_batch, reconstruction_metrics


def test_matching_undoes_a_shuffle_of_noisy_copies(small_faces):
    originals = small_faces.images[:6]
    shuffle = np.array([3, 0, 5, 1, 4, 2])
    noisy = np.clip(originals[shuffle] + np.random.default_rng(0).normal(0, 0.05, originals.shape), 0, 1)
    order = match_batch(noisy, originals)
    assert np.array_equal(shuffle[order], np.arange(6))


def test_label_accuracy_ignores_order():
    assert label_accuracy(np.array([2, 1, 1]), np.array([1, 2, 3])) == 2 / 3


def test_exact_reconstructions_are_perfect_and_reidentified(small_faces):
    chosen = np.array([0, 10, 20])
    gallery = np.setdiff1d(np.arange(len(small_faces.images)), chosen)
    metrics, ordered = reconstruction_metrics(
        small_faces.images[chosen][::-1], small_faces.images[chosen], small_faces.labels[chosen],
        small_faces.labels[chosen], small_faces.images[gallery], small_faces.labels[gallery],
        small_faces.labels[chosen], small_faces.n_classes)
    assert np.array_equal(ordered, small_faces.images[chosen])
    assert metrics["psnr_mean"] > 100 and metrics["ssim_mean"] > 0.999 and metrics["label_accuracy"] == 1.0
    assert metrics["reid_top1"] == 1.0
