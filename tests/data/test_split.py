import numpy as np
import pytest

from mirisk.data import split_per_subject
from mirisk.errors import MiriskError


def test_split_is_per_subject_and_deterministic(faces):
    split = split_per_subject(faces, n_train=7, seed=3)
    assert np.bincount(faces.labels[split.train]).tolist() == [7] * 40
    assert np.bincount(faces.labels[split.held_out]).tolist() == [3] * 40
    assert not set(split.train) & set(split.held_out)
    again = split_per_subject(faces, n_train=7, seed=3)
    np.testing.assert_array_equal(split.train, again.train)
    other = split_per_subject(faces, n_train=7, seed=4)
    assert not np.array_equal(split.train, other.train)


def test_too_few_images_per_subject_is_an_error(faces):
    with pytest.raises(MiriskError, match="10 or fewer"):
        split_per_subject(faces, n_train=10)
