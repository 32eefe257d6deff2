"""The judge's on-disk cache: off unless asked for, shared by judges, never trusted blindly."""

import numpy as np

from mirisk.metrics import judge_cache
from mirisk.metrics.face_judge import FaceJudge


def test_embeddings_are_kept_owner_only_and_reused_by_another_judge(faces, tmp_path, monkeypatch):
    monkeypatch.setenv(judge_cache.CACHE_VARIABLE, str(tmp_path / "cache"))
    photos = faces.images[:3]
    first = FaceJudge().embed(photos)
    (stored,) = (tmp_path / "cache" / "judge").iterdir()
    assert stored.stat().st_mode & 0o777 == 0o600 and (tmp_path / "cache" / "judge").stat().st_mode & 0o777 == 0o700
    reader = FaceJudge()
    monkeypatch.setattr(reader, "_embed", lambda images: (_ for _ in ()).throw(AssertionError("re-embedded")))
    again = reader.embed(photos)
    np.testing.assert_array_equal(again.descriptors, first.descriptors)
    np.testing.assert_array_equal(again.detected, first.detected)


def test_a_torn_cache_file_is_embedded_again_and_nothing_is_written_without_the_variable(faces, tmp_path,
                                                                                        monkeypatch):
    monkeypatch.setenv(judge_cache.CACHE_VARIABLE, str(tmp_path / "cache"))
    photos = faces.images[3:5]
    first = FaceJudge().embed(photos)
    (stored,) = (tmp_path / "cache" / "judge").iterdir()
    stored.write_bytes(stored.read_bytes()[:40])
    np.testing.assert_array_equal(FaceJudge().embed(photos).descriptors, first.descriptors)
    monkeypatch.delenv(judge_cache.CACHE_VARIABLE)
    assert judge_cache.cache_folder() is None
