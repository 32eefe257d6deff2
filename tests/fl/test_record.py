"""Server records round-trip safely and can be built from a framework's parameter lists."""

import json

import pytest
import torch

from mirisk.errors import MiriskError
from mirisk.fl.record import ServerRecord
from mirisk.fl.simulation import simulate_round
from mirisk.models.architectures import build_model


@pytest.fixture()
def record(small_faces):
    torch.manual_seed(0)
    module = build_model("lenet", small_faces.input_shape, small_faces.n_classes)
    return simulate_round(module, torch.as_tensor(small_faces.images[:2]), torch.as_tensor(small_faces.labels[:2]),
                          "lenet", small_faces.n_classes)


def test_save_and_load_round_trip_with_owner_only_files(record, tmp_path):
    folder = record.save(tmp_path / "record")
    loaded = ServerRecord.load(folder)
    assert loaded.metadata() == record.metadata()
    assert all(torch.equal(loaded.update[name], record.update[name]) for name in record.update)
    assert all((path.stat().st_mode & 0o777) == 0o600 for path in folder.iterdir())


def test_parameter_lists_in_state_dict_order_make_the_same_record(record):
    rebuilt = ServerRecord.from_arrays([v.numpy() for v in record.weights.values()],
                                       [v.numpy() for v in record.update.values()], **record.metadata())
    assert all(torch.equal(rebuilt.update[name], record.update[name]) for name in record.update)
    with pytest.raises(MiriskError, match="tensors"):
        ServerRecord.from_arrays([], [], **record.metadata())


def test_broken_records_are_named(record, tmp_path):
    bad = {**record.update, next(iter(record.update)): torch.full_like(next(iter(record.update.values())), float("nan"))}
    with pytest.raises(MiriskError, match="NaN"):
        ServerRecord(**{**record.metadata(), "weights": record.weights, "update": bad})
    with pytest.raises(MiriskError, match="not a server record"):
        ServerRecord.load(tmp_path)
    folder = record.save(tmp_path / "record")
    (folder / "record.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(MiriskError, match="mirisk-fl-record/1"):
        ServerRecord.load(folder)
