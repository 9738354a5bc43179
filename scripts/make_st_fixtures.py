#!/usr/bin/env python3
"""Writes the safetensors test fixtures under tests/fixtures/safetensors/.

good/ files are written by the reference implementation (the `safetensors`
package), so the C reader is checked against what other tools produce:
  dtypes.safetensors        F32 [2,3], F16 [4], BF16 [3], I8 [2,2], with __metadata__
  scalars_empty.safetensors scalars (shape []) and zero-size tensors
  many.safetensors          20 tensors "layers.{i}.w", F32 [i+1] filled with i
  sharded/                  two shards and model.safetensors.index.json
bad/ files are hand-crafted hostile files; every one must be rejected by the
reference and by the C reader (tests/integration/test_safetensors_reference.py
and tests/unit/test_safetensors.c check both). Files this script does not name
(fuzzer crashers kept as regression tests) are left alone.

The expected values are spelled out in tests/unit/test_safetensors.c and the
pytest; keep the three in step.

Usage: .venv/bin/python scripts/make_st_fixtures.py [OUT_DIR]
"""
import json
import os
import struct
import sys

import numpy as np
from safetensors import TensorSpec, serialize
from safetensors.numpy import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def bf16_bits(values):
    """float32 -> bfloat16 bit patterns (the values used here are exact in bf16)."""
    bits = np.asarray(values, dtype=np.float32).view(np.uint32)
    assert np.all(bits & 0xFFFF == 0), "fixture values must be exact in bfloat16"
    return (bits >> 16).astype(np.uint16)


def write_dtypes(path):
    # numpy has no bfloat16: hand the reference serializer the raw bits.
    tensors = {
        "f32": np.arange(6, dtype=np.float32).reshape(2, 3) * 0.5 - 1.0,
        "f16": np.array([1.0, -2.0, 0.5, 65504.0], dtype=np.float16),
        "bf16": bf16_bits([1.0, -2.5, 3.140625]),
        "i8": np.array([[-128, -1], [0, 127]], dtype=np.int8),
    }
    specs = {}
    for name, a in tensors.items():
        specs[name] = TensorSpec(dtype="bfloat16" if name == "bf16" else a.dtype.name,
                                 shape=list(a.shape), data_ptr=a.ctypes.data, data_len=a.nbytes)
    blob = serialize(specs, metadata={"format": "pt", "note": "fixture"})
    with open(path, "wb") as f:
        f.write(bytes(blob))


def write_scalars_empty(path):
    save_file({
        "scalar_f32": np.array(42.5, dtype=np.float32),
        "scalar_i8": np.array(-7, dtype=np.int8),
        "empty_f16": np.zeros((0, 4), dtype=np.float16),
        "empty_i8": np.zeros((0,), dtype=np.int8),
    }, path)


def write_many(path):
    save_file({f"layers.{i}.w": np.full(i + 1, i, dtype=np.float32) for i in range(20)}, path)


def write_sharded(d):
    os.makedirs(d, exist_ok=True)
    shards = {
        "model-00001-of-00002.safetensors": {
            "embed.weight": np.arange(8, dtype=np.float32).reshape(2, 4),
            "layers.0.w": np.array([1.5, -1.5], dtype=np.float16),
        },
        "model-00002-of-00002.safetensors": {
            "layers.1.w": np.array([5, -5, 9], dtype=np.int8),
            "norm.weight": np.ones(4, dtype=np.float32),
        },
    }
    weight_map, total = {}, 0
    for fname, tensors in shards.items():
        save_file(tensors, os.path.join(d, fname), metadata={"format": "pt"})
        for name, a in tensors.items():
            weight_map[name] = fname
            total += a.nbytes
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")


def raw(header, data=b""):
    """A file with the given header text (str or bytes) and data buffer, unpadded."""
    h = header.encode() if isinstance(header, str) else header
    return struct.pack("<Q", len(h)) + h + data


T8 = '"dtype":"F32","shape":[2],"data_offsets":[0,8]'  # a valid 8-byte tensor body
Z8 = b"\0" * 8

# name -> bytes; each breaks one rule. bad_reasons in tests/unit/test_safetensors.c
# names the error the C reader must give for each.
BAD = {
    "empty": b"",
    "short_length": b"\x10\0\0",
    "header_len_zero": struct.pack("<Q", 0),
    "header_too_large": struct.pack("<Q", 100_000_001) + b"{}      ",
    "header_past_eof": struct.pack("<Q", 64) + b"{}      ",
    "header_not_json": raw('{"a":{' + T8 + "}", Z8),
    "header_not_object": raw("[1,2]   "),
    "header_bad_utf8": raw(b'{"\xff":{' + T8.encode() + b"}}", Z8),
    "header_bom": raw(b'\xef\xbb\xbf{"a":{' + T8.encode() + b"}}", Z8),
    "header_control_char": raw('{"a\tb":{' + T8 + "}}", Z8),
    "header_trailing_nul": raw('{"a":{' + T8 + "}}\0", Z8),
    "tensor_not_object": raw('{"a":3}'),
    "missing_dtype": raw('{"a":{"shape":[2],"data_offsets":[0,8]}}', Z8),
    "missing_shape": raw('{"a":{"dtype":"F32","data_offsets":[0,8]}}', Z8),
    "missing_offsets": raw('{"a":{"dtype":"F32","shape":[2]}}', Z8),
    "duplicate_field": raw('{"a":{"dtype":"F32",' + T8 + "}}", Z8),
    "unknown_dtype": raw('{"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}}', Z8),
    "dtype_not_string": raw('{"a":{"dtype":3,"shape":[2],"data_offsets":[0,8]}}', Z8),
    "shape_not_array": raw('{"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}}', Z8),
    "shape_negative": raw('{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}', Z8),
    "shape_fraction": raw('{"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}', Z8),
    "shape_overflow": raw('{"a":{"dtype":"F32","shape":[1099511627776,1099511627776],'
                          '"data_offsets":[0,8]}}', Z8),
    "offsets_three": raw('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}}', Z8),
    "offsets_strings": raw('{"a":{"dtype":"F32","shape":[2],"data_offsets":["0","8"]}}', Z8),
    "offsets_reversed": raw('{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}', Z8),
    "offsets_past_end": raw('{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', Z8),
    "size_mismatch": raw('{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', Z8),
    "overlap": raw('{"a":{' + T8 + '},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', Z8),
    "gap": raw('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
               '"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}', Z8 + Z8[:4]),
    "not_from_zero": raw('{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', Z8),
    "trailing_bytes": raw('{"a":{' + T8 + "}}", Z8 + b"\0"),
    "data_without_tensors": raw("{}      ", Z8),
    "zero_size_inside": raw('{"a":{' + T8 + '},"z":{"dtype":"F32","shape":[0],'
                            '"data_offsets":[4,4]}}', Z8),
    "zero_size_past_end": raw('{"a":{' + T8 + '},"z":{"dtype":"F32","shape":[0],'
                              '"data_offsets":[12,12]}}', Z8),
    "duplicate_name": raw('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
                          '"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', Z8),
    "metadata_not_object": raw('{"__metadata__":[],"a":{' + T8 + "}}", Z8),
    "metadata_non_string": raw('{"__metadata__":{"k":1},"a":{' + T8 + "}}", Z8),
    "metadata_twice": raw('{"__metadata__":{},"__metadata__":{},"a":{' + T8 + "}}", Z8),
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests/fixtures/safetensors")
    good, bad = os.path.join(out, "good"), os.path.join(out, "bad")
    os.makedirs(good, exist_ok=True)
    os.makedirs(bad, exist_ok=True)
    write_dtypes(os.path.join(good, "dtypes.safetensors"))
    write_scalars_empty(os.path.join(good, "scalars_empty.safetensors"))
    write_many(os.path.join(good, "many.safetensors"))
    write_sharded(os.path.join(good, "sharded"))
    for name, blob in BAD.items():
        with open(os.path.join(bad, name + ".safetensors"), "wb") as f:
            f.write(blob)


if __name__ == "__main__":
    main()
