"""The decoder protocol on the real IXI slices (small settings to stay fast)."""

import numpy as np
import pytest

from mirisk.attacks.decoder import DecoderSettings
from mirisk.data.mri import load_mri
from mirisk.errors import MiriskError
from mirisk.pipelines.mri import SegmenterSettings, decoder_protocol, fold_subjects, subject_similarity

SMALL = {"folds": 2, "n_subjects": 10, "segmenter": SegmenterSettings(epochs=30),
         "decoder": DecoderSettings(epochs=60)}


@pytest.fixture(scope="module")
def slices():
    return load_mri(None, slices=1, groups="tissue")


@pytest.fixture(scope="module")
def from_probs(slices):
    return decoder_protocol(slices, "unet", "probs", **SMALL)


@pytest.fixture(scope="module")
def from_labels(slices):
    return decoder_protocol(slices, "unet", "labels", **SMALL)


def test_probability_maps_re_identify_patients_well_above_chance(from_probs):
    metrics = from_probs.payload["metrics"]
    # Measured at these settings: re-ID top-1 100% of 10 (chance 10%), SSIM 0.43.
    assert metrics["reid_top1"] >= 0.6 and metrics["chance_top1"] == pytest.approx(0.1)
    assert from_probs.reconstructions.shape == from_probs.originals.shape == (10, 1, 120, 120)
    assert len(set(from_probs.subject_ids)) == 10 and from_probs.ranks.shape == (10, 2)


def test_hard_labels_give_worse_reconstructions(from_probs, from_labels):
    assert from_labels.payload["metrics"]["ssim_mean"] < from_probs.payload["metrics"]["ssim_mean"] - 0.02
    assert from_labels.payload["threat_model"]["access"] == "label-only"


def test_similarity_ranks_a_subject_first_against_itself(slices):
    candidates = slices.of_subjects(slices.subjects[:6]).images
    by_ssim, by_correlation = subject_similarity(candidates[[2, 4]], candidates, 1)
    assert by_ssim.argmax(axis=1).tolist() == [2, 4] and by_correlation.argmax(axis=1).tolist() == [2, 4]


def test_folds_partition_the_chosen_subjects(slices):
    chosen, groups = fold_subjects(slices, 40, 4, seed=0)
    assert len(chosen) == 40 and [len(group) for group in groups] == [10] * 4
    assert sorted(np.concatenate(groups)) == sorted(chosen)
    with pytest.raises(MiriskError, match="at least 2 folds"):
        fold_subjects(slices, 40, 1, seed=0)
    with pytest.raises(MiriskError, match="the data hold 93"):
        fold_subjects(slices, 100, 4, seed=0)
    with pytest.raises(MiriskError, match="too few"):
        fold_subjects(slices, 6, 4, seed=0)
