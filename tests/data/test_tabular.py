"""The tabular schema's one encoding and its one-line errors."""

import numpy as np
import pandas as pd
import pytest

from mirisk.data.tabular import TabularSchema, read_table
from mirisk.errors import MiriskError

SCHEMA = TabularSchema(numeric={"age": (0.0, 100.0)}, categorical={"blood": ("O", "A", "B")}, target="y", id_column="id")


def table(**overrides):
    base = {"id": ["p1", "p2", "p3"], "age": [30, 40, 50], "blood": ["O", "B", "A"], "y": [1.0, 2.0, 3.0]}
    return pd.DataFrame({**base, **overrides})


def test_encoding_is_numeric_then_one_hot_without_the_reference_level():
    assert SCHEMA.encoded_names == ["age", "blood=A", "blood=B"]
    assert np.array_equal(SCHEMA.encode(table()), [[30, 0, 0], [40, 0, 1], [50, 1, 0]])
    lower, upper = SCHEMA.encoded_bounds()
    assert lower.tolist() == [0, 0, 0] and upper.tolist() == [100, 1, 1]


def test_subset_and_round_trip_keep_the_encoding():
    assert SCHEMA.subset(("blood",)).encoded_names == ["blood=A", "blood=B"]
    assert TabularSchema.from_dict(SCHEMA.as_dict()) == SCHEMA


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (table().drop(columns="blood"), "lacks column"),
        (table(blood=["O", "AB", "A"]), "outside the model's categories"),
        (table(age=[30, "old", 50]), "non-numeric"),
        (table(age=[30, None, 50]), "missing or non-numeric"),
        (table(age=[30, float("inf"), 50]), "has 1 infinite value"),
        (table(id=["p1", "p2", "p1"]), "appear more than once \\(e.g. p1\\)"),
    ],
)
def test_bad_tables_are_named(bad, message):
    with pytest.raises(MiriskError, match=message):
        SCHEMA.encode(bad)


def test_subset_refuses_unknown_columns():
    with pytest.raises(MiriskError, match="not model features"):
        SCHEMA.subset(("height",))


def test_read_table_errors(tmp_path):
    with pytest.raises(MiriskError, match="not found"):
        read_table(tmp_path / "none.csv")
    (tmp_path / "empty.csv").write_text("a,b\n")
    with pytest.raises(MiriskError, match="no rows"):
        read_table(tmp_path / "empty.csv")
    (tmp_path / "binary.csv").write_bytes(b"\xff\xfe\x00\x81\x82")
    with pytest.raises(MiriskError, match="not a readable CSV"):
        read_table(tmp_path / "binary.csv")


def test_values_outside_the_trained_range_are_warned_of():
    with pytest.warns(UserWarning, match=r"'age' has 1 value\(s\) outside the range the model was trained on"):
        SCHEMA.encode(table(age=[30, 400, 50]))
