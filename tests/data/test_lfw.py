"""LFW in its published layout: the public/private split by photo count, and the centre crop
taken once (the deep-funneled face fills about the central 120 of 250 pixels)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mirisk.data.lfw import CROP, SIZE, crop_face, lfw_photos, private_people, public_people, read_people
from mirisk.errors import MiriskError


def _lfw(root, counts: dict[str, int]):
    for name, count in counts.items():
        (root / name).mkdir(parents=True)
        for index in range(count):
            picture = np.zeros((250, 250, 3), np.uint8)
            picture[65:185, 65:185] = (120 + index, 100, 200)  # the central 120 x 120 px: the face
            Image.fromarray(picture).save(root / name / f"{name}_{index + 1:04d}.jpg", format="PNG")  # lossless
    return root


def test_people_are_split_by_their_photo_count_and_never_overlap(tmp_path):
    root = _lfw(tmp_path, {"Ann_A": 22, "Bob_B": 1, "Cy_C": 9, "Dee_D": 10, "Eve_E": 25})
    public, private = public_people(root), private_people(root, per_person=21)
    assert sorted(public) == ["Bob_B", "Cy_C"] and sorted(private) == ["Ann_A", "Eve_E"]
    assert [len(files) for files in private.values()] == [21, 21] and not set(public) & set(private)


def test_the_crop_is_the_central_120_pixels_at_64_in_colour(tmp_path):
    root = _lfw(tmp_path, {"Ann_A": 20, "Bob_B": 2})
    data = read_people(root, private_people(root, per_person=3), "lfw_private:test")
    assert data.images.shape == (3, 3, SIZE, SIZE) and data.class_names == ("Ann_A",) and CROP == 120
    assert np.abs(data.images[0, 2] - 200 / 255).max() < 0.01 and data.images[0].min() > 0.35  # no border left
    with Image.open(root / "Ann_A" / "Ann_A_0002.jpg") as photo:
        assert crop_face(photo).shape == (3, SIZE, SIZE)


def test_a_folder_not_in_lfws_layout_is_refused(tmp_path):
    with pytest.raises(MiriskError, match="not in LFW's layout"):
        lfw_photos(tmp_path)
    with pytest.raises(MiriskError, match="LFW folder not found"):
        lfw_photos(tmp_path / "nowhere")
