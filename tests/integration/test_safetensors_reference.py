"""The safetensors fixtures against the reference implementation (the Python
`safetensors` package): every hostile file under tests/fixtures/safetensors/bad/
that the C reader rejects is rejected by the reference too, and the good files
hold the values tests/unit/test_safetensors.c expects."""
import json
import os
import struct

import numpy as np
import pytest
from safetensors import SafetensorError, safe_open

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "safetensors")
BAD = sorted(os.listdir(os.path.join(FIXTURES, "bad")))


def test_bad_fixtures_exist():
    assert len(BAD) >= 30


@pytest.mark.parametrize("name", BAD)
def test_reference_rejects_bad_fixture(name):
    with pytest.raises(SafetensorError):
        with safe_open(os.path.join(FIXTURES, "bad", name), framework="numpy") as f:
            for k in f.keys():
                f.get_slice(k)


def bf16_values(path, name):
    """numpy has no bfloat16: decode the tensor's raw bytes from the file."""
    with open(path, "rb") as f:
        blob = f.read()
    n = struct.unpack("<Q", blob[:8])[0]
    begin, end = json.loads(blob[8:8 + n])[name]["data_offsets"]
    bits = np.frombuffer(blob[8 + n + begin:8 + n + end], dtype="<u2").astype(np.uint32) << 16
    return bits.view(np.float32).tolist()


def test_good_dtypes():
    path = os.path.join(FIXTURES, "good", "dtypes.safetensors")
    with safe_open(path, framework="numpy") as f:
        assert sorted(f.keys()) == ["bf16", "f16", "f32", "i8"]
        assert f.metadata() == {"format": "pt", "note": "fixture"}
        f32 = f.get_tensor("f32")
        assert f32.dtype == np.float32 and f32.shape == (2, 3)
        assert f32.ravel().tolist() == [i * 0.5 - 1.0 for i in range(6)]
        f16 = f.get_tensor("f16")
        assert f16.dtype == np.float16 and f16.tolist() == [1.0, -2.0, 0.5, 65504.0]
        i8 = f.get_tensor("i8")
        assert i8.dtype == np.int8 and i8.tolist() == [[-128, -1], [0, 127]]
        bf16 = f.get_slice("bf16")
        assert bf16.get_dtype() == "BF16" and bf16.get_shape() == [3]
    assert bf16_values(path, "bf16") == [1.0, -2.5, 3.140625]


def test_good_scalars_and_empty():
    with safe_open(os.path.join(FIXTURES, "good", "scalars_empty.safetensors"), "numpy") as f:
        assert f.metadata() is None
        s = f.get_tensor("scalar_f32")
        assert s.shape == () and s.dtype == np.float32 and float(s) == 42.5
        s = f.get_tensor("scalar_i8")
        assert s.shape == () and s.dtype == np.int8 and int(s) == -7
        e = f.get_tensor("empty_f16")
        assert e.shape == (0, 4) and e.dtype == np.float16
        e = f.get_tensor("empty_i8")
        assert e.shape == (0,) and e.dtype == np.int8


def test_good_many():
    with safe_open(os.path.join(FIXTURES, "good", "many.safetensors"), "numpy") as f:
        assert len(f.keys()) == 20
        for i in range(20):
            assert f.get_tensor(f"layers.{i}.w").tolist() == [float(i)] * (i + 1)


def test_good_sharded():
    d = os.path.join(FIXTURES, "good", "sharded")
    with open(os.path.join(d, "model.safetensors.index.json")) as f:
        weight_map = json.load(f)["weight_map"]
    values = {}
    for name, shard in weight_map.items():
        with safe_open(os.path.join(d, shard), "numpy") as f:
            assert f.metadata() == {"format": "pt"}
            values[name] = f.get_tensor(name)
    assert values["embed.weight"].ravel().tolist() == list(range(8))
    assert values["layers.0.w"].tolist() == [1.5, -1.5]
    assert values["layers.1.w"].tolist() == [5, -5, 9]
    assert values["norm.weight"].tolist() == [1.0] * 4
