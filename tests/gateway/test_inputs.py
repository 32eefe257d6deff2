"""Request bodies: a validated float32 batch, or a 4xx that names the problem."""

import hashlib

import blake3
import numpy as np
import orjson
import pytest

from mirisk.gateway.inputs import BadRequest, InputContract, input_digests, parse_inputs

CONTRACT = InputContract((1, 2, 3), (0.0, 1.0), max_batch=4, max_body_bytes=1000)


def body(inputs) -> bytes:
    return orjson.dumps({"inputs": inputs})


def test_nested_and_flat_inputs_give_the_same_batch():
    nested = np.linspace(0, 1, 12, dtype=np.float32).reshape(2, 1, 2, 3)
    from_nested = parse_inputs(body(nested.tolist()), CONTRACT)
    from_flat = parse_inputs(body(nested.reshape(2, -1).tolist()), CONTRACT)
    assert from_nested.dtype == np.float32 and from_nested.shape == (2, 1, 2, 3)
    np.testing.assert_array_equal(from_nested, nested)
    np.testing.assert_array_equal(from_flat, nested)


@pytest.mark.parametrize(("raw", "status", "message"), [
    (None, 413, "over the limit of 1,000 bytes"),
    (b"not json", 400, "not valid JSON"),
    (b'{"inputs": [[NaN, 0, 0, 0, 0, 0]]}', 400, "NaN and Infinity are not JSON numbers"),
    (b"[1, 2]", 422, 'must be a JSON object {"inputs"'),
    (b'{"inputs": []}', 422, "is empty"),
    (body([[0.0] * 6] * 5), 413, "5 inputs in one request; the limit is 4"),
    (body([[0.0] * 6, [0.0] * 5]), 422, "all inputs alike"),
    (body([["a"] * 6]), 422, "JSON numbers only"),
    (body([["0.5"] * 6]), 422, "JSON numbers only"),
    (body([["0_1"] + [0] * 5]), 422, "JSON numbers only"),
    ('{"inputs": [["\u0660.\u0665", 0, 0, 0, 0, 0]]}'.encode(), 422, "JSON numbers only"),  # Arabic-Indic digits
    (body([[True] + [0.0] * 5]), 422, "JSON numbers only"),
    (body([[None] + [0.0] * 5]), 422, "JSON numbers only"),
    (b'{"inputs": [[0, 0, 0, 0, 0, 0]], "extra": 1}', 422, "JSON numbers only"),
    (b'{"inputs": [[1e400, 0, 0, 0, 0, 0]]}', 422, "too large to be a value"),
    (body([[[0]] * 6]), 422, "got 6x1"),
    (body([[0.0] * 7]), 422, "1x2x3 or flat with 6 values; got 7"),
    (body([[0.0] * 6, [0.5, 1e39, 0, 0, 0, 0]]), 422, "input 1 holds NaN, infinite or too large"),
    (body([[0.0] * 6, [0.0] * 6, [0.0, 1.5, 0, 0, 0, 0]]), 422, "input 2 has values outside the model's range"),
])
def test_bad_bodies_are_refused_with_a_clear_message(raw, status, message):
    with pytest.raises(BadRequest) as refused:
        parse_inputs(raw, CONTRACT)
    assert refused.value.status == status and message in refused.value.message


def test_digests_identify_inputs_without_holding_them():
    batch = np.random.default_rng(0).random((3, 1, 2, 3), dtype=np.float32)
    digests = input_digests(batch)
    assert len(set(digests)) == 3 and all(len(digest) == 64 for digest in digests)
    assert input_digests(batch[1:2]) == digests[1:2]
    assert digests[0] == blake3.blake3(batch[0].tobytes()).hexdigest()
    assert input_digests(batch, "sha256")[2] == hashlib.sha256(batch[2].tobytes()).hexdigest()


@pytest.mark.parametrize("raw", [
    b'{"inputs": [' + b",".join([b"[0]"] * 5000) + b"]}",  # millions of one-element lists, in small
    b'{"inputs": [[' + b",".join([b"0"] * 5000) + b"]]}",  # a flat input far past max_batch x size
    b'{"inputs": ' + b"[" * 50 + b"]" * 50 + b"}",  # nesting deeper than any input
])
def test_a_body_is_sized_from_its_bytes_before_it_is_parsed(raw, monkeypatch):
    def never(_):
        raise AssertionError("the parser ran")

    monkeypatch.setattr(orjson, "loads", never)
    with pytest.raises(BadRequest) as refused:
        parse_inputs(raw, CONTRACT)
    assert refused.value.status == 413 and "more arrays or values than 4 inputs" in refused.value.message
