"""The segmentation networks: shapes, the U-Net/SegNet difference, Dice."""

import numpy as np
import pytest
import torch

from mirisk.errors import MiriskError
from mirisk.models.segmentation import build_segmenter, check_divisible, mean_dice


@pytest.mark.parametrize("architecture", ["unet", "segnet"])
def test_output_is_one_score_map_per_class(architecture):
    module = build_segmenter(architecture, 1, 4, width=4, depth=3).eval()
    assert module(torch.rand(2, 1, 48, 40)).shape == (2, 4, 48, 40)


def test_segnet_has_no_skip_connections():
    unet, segnet = build_segmenter("unet", 1, 2, width=4), build_segmenter("segnet", 1, 2, width=4)
    assert unet.skips and not segnet.skips
    assert sum(p.numel() for p in segnet.parameters()) < sum(p.numel() for p in unet.parameters())


def test_bad_architecture_and_sizes_are_named():
    with pytest.raises(MiriskError, match="unknown segmentation architecture"):
        build_segmenter("fcn", 1, 2)
    with pytest.raises(MiriskError, match="divisible by 8"):
        check_divisible((1, 1, 121, 120), 8)


def test_mean_dice_by_hand():
    truth = np.array([[0, 1, 1, 2]])
    assert mean_dice(np.array([[0, 1, 0, 2]]), truth, 3) == pytest.approx((2 / 3 + 1.0) / 2)
    assert mean_dice(truth, truth, 3) == 1.0
