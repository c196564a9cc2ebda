"""Hostile review 16 (sources): local metadata documents are sized before they are read; Zarr v3
fields a reader must understand are refused; a source's bad fill_value or array name is exit 4
naming the source at describe time, before anything is written. Outcomes are checked with
xarray (a v3 field marked must_understand: false still caches and reads back)."""
import json
import os
import resource
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

sys.path.insert(0, str(Path(__file__).parent))
from conftest import BIN, run_cache  # noqa: E402

SANITIZED = BIN.exists() and b"__asan_init" in BIN.read_bytes()


def limited():
    """3 GB of address space: a whole read of a 20 GB sparse file must not be tried."""
    if not SANITIZED:
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))


def run(*args, cwd=None):
    return subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True, timeout=120,
                          preexec_fn=limited, cwd=cwd)


def v2_store(root, zarray, name="x", data=None):
    root.mkdir()
    (root / ".zgroup").write_text('{"zarr_format":2}')
    (root / name).mkdir()
    (root / name / ".zattrs").write_text('{"_ARRAY_DIMENSIONS":["t"]}')
    (root / name / ".zarray").write_text(json.dumps(zarray))
    if data is not None:
        (root / name / "0").write_bytes(data)
    return root


def zarray(**kw):
    z = {"zarr_format": 2, "shape": [4], "chunks": [4], "dtype": "<f8", "compressor": None,
         "fill_value": 0, "filters": None, "order": "C"}
    z.update(kw)
    return z


V3_BASE = {"zarr_format": 3, "node_type": "array", "shape": [4], "data_type": "float64",
           "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [4]}},
           "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
           "fill_value": 0, "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
           "attributes": {}, "dimension_names": ["t"]}


def v3_store(root, **extra):
    (root / "x" / "c").mkdir(parents=True)
    (root / "zarr.json").write_text('{"zarr_format":3,"node_type":"group","attributes":{}}')
    (root / "x" / "zarr.json").write_text(json.dumps({**V3_BASE, **extra}))
    (root / "x" / "c" / "0").write_bytes(struct.pack("<4d", 1, 2, 3, 4))
    return root


def cache_config(src, out):
    return {"data_uri": str(src), "cache_store": str(out), "recommend_changes": False,
            "deploy_mode": "series"}


# 1. Local documents sized first.

def test_sparse_20gb_zarray_and_refs_are_refused_by_size(tmp_path):
    src = v2_store(tmp_path / "src.zarr", zarray())
    os.truncate(src / "x" / ".zarray", 20 << 30)  # sparse: no disk
    refs = tmp_path / "refs.json"
    refs.write_bytes(b"")
    os.truncate(refs, 20 << 30)
    for target, named in [(src, src / "x" / ".zarray"), (refs, refs)]:
        p = run("inspect", target)
        assert p.returncode == 4, (target, p.returncode, p.stderr)
        assert str(named) in p.stderr and "ZP_HTTP_MAX_DOCUMENT_MB" in p.stderr, p.stderr
        assert "bad_alloc" not in p.stderr


def test_refs_o_over_a_sparse_file_leaves_it_and_says_why(tmp_path):
    src = v2_store(tmp_path / "src.zarr", zarray(), data=struct.pack("<4d", 1, 2, 3, 4))
    out = tmp_path / "out.json"
    out.write_bytes(b"")
    os.truncate(out, 20 << 30)
    p = run("refs", src, "-o", out)
    assert p.returncode == 5, (p.returncode, p.stderr)
    assert str(out) in p.stderr and "ZP_HTTP_MAX_DOCUMENT_MB" in p.stderr, p.stderr
    assert out.stat().st_size == 20 << 30


# 2. Zarr v3 fields that must be understood.

@pytest.mark.parametrize("field,value,shown", [
    ("storage_transformers", [{"name": "some_unknown_transformer", "configuration": {}}],
     "some_unknown_transformer"),
    ("some_extension", {"must_understand": True, "name": "scale_by_1000"}, "some_extension"),
    ("some_extension", {"name": "no_must_understand_given"}, "some_extension"),
])
def test_v3_fields_not_understood_are_refused(tmp_path, field, value, shown):
    src = v3_store(tmp_path / "src.zarr", **{field: value})
    out = tmp_path / "out.zarr"
    p = run_cache(tmp_path, cache_config(src, out), "--yes")
    assert p.returncode == 4, (p.returncode, p.stderr)
    assert str(src) in p.stderr and "'x'" in p.stderr and shown in p.stderr, p.stderr
    assert not out.exists()


def test_v3_field_with_must_understand_false_is_read(tmp_path):
    src = v3_store(tmp_path / "src.zarr", storage_transformers=[],
                   some_extension={"must_understand": False, "name": "ignorable"})
    out = tmp_path / "out.zarr"
    run_cache(tmp_path, cache_config(src, out), "--yes", check=0)
    np.testing.assert_array_equal(xr.open_zarr(out)["x"].values, [1, 2, 3, 4])


# 3. A source's fill_value and array names, checked when it is described.

@pytest.mark.parametrize("fill", ["oops", [1, 2], {"a": 1}])
@pytest.mark.parametrize("fmt", [2, 3])
def test_bad_fill_value_is_exit_4_naming_the_source_before_writing(tmp_path, fill, fmt):
    src = tmp_path / "src.zarr"
    if fmt == 2:
        v2_store(src, zarray(fill_value=fill))
    else:
        v3_store(src, fill_value=fill)
    out = tmp_path / "out.zarr"
    for command in ["inspect", "plan"]:
        p = run("inspect", src) if command == "inspect" else run_cache(
            tmp_path, cache_config(src, out), command="plan")
        assert p.returncode == 4, (command, p.returncode, p.stderr)
        assert str(src) in p.stderr and "'x'" in p.stderr and "fill_value" in p.stderr, p.stderr
    p = run_cache(tmp_path, cache_config(src, out), "--yes")
    assert p.returncode == 4 and "config key" not in p.stderr, (p.returncode, p.stderr)
    assert not out.exists() and not list(tmp_path.glob(".out.zarr*"))


def test_fill_value_too_big_for_the_dtype_names_file_and_variable(tmp_path):
    src = v2_store(tmp_path / "src.zarr", zarray(dtype="<i8", fill_value=1e300))
    p = run("inspect", src)
    assert p.returncode == 4, (p.returncode, p.stderr)
    assert str(src) in p.stderr and "'x'" in p.stderr and "<i8" in p.stderr, p.stderr


def test_array_name_with_a_control_character_is_exit_4_naming_the_source(tmp_path):
    src = v2_store(tmp_path / "src.zarr", zarray(), name="a\x01b")
    out = tmp_path / "out.zarr"
    p = run("inspect", src)
    assert p.returncode == 4 and str(src) in p.stderr, (p.returncode, p.stderr)
    p = run_cache(tmp_path, cache_config(src, out), "--yes")
    assert p.returncode == 4 and str(src) in p.stderr, (p.returncode, p.stderr)
    assert "config key" not in p.stderr and not out.exists()
