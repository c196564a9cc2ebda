"""Sources as untrusted input (issue 26): what a reference set, a Zarr store or a NetCDF file says
can never name a local file from a remote source, crash us, or make us allocate or work without
bound. Hostile inputs are served for real (nginx on loopback) or written with h5py/netCDF4."""
import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest import BIN, ERA5, assert_matches, need_fixtures, open_kerchunk, run_cache  # noqa: E402
from servers import Nginx  # noqa: E402

needs_nginx = pytest.mark.skipif(shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(),
                                 reason="nginx-light not installed (scripts/setup.sh)")


SANITIZED = BIN.exists() and b"__asan_init" in BIN.read_bytes()


def memory_limit():
    """3 GB of address space for the run (children included); ASan reserves terabytes of address
    space, so there the limit cannot apply."""
    if not SANITIZED:
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))


def private_copy(src, dst):
    """A local file only its owner may read: what a remote reference set must never reach."""
    shutil.copy(src, dst)
    os.chmod(dst, 0o600)
    return dst


def hostile_reference_sets(secret):
    """Reference sets of the ERA5 fixture whose d2m chunks point at the local `secret` copy, each
    in one of the ways a reference set can name a file."""
    refs = json.loads((ERA5 / "refs.json").read_text())["refs"]
    day1 = "era5_small_20000101.nc"

    def rewrite(fn):
        return {k: (fn(v) if isinstance(v, list) and k.startswith("d2m/") and v[0] == day1 else v)
                for k, v in refs.items()}

    url = f"file://{secret}"
    return {
        "file_url": {"version": 1, "refs": rewrite(lambda v: [url] + v[1:])},
        "template": {"version": 1, "templates": {"u": url}, "refs": rewrite(lambda v: ["{{u}}"] + v[1:])},
        "gen": {"version": 1, "refs": {k: v for k, v in rewrite(lambda v: v).items() if not k.startswith("d2m/0.")},
                "gen": [{"key": "d2m/0.{{j}}.{{i}}", "url": url, "offset": "{{24542 + 0*i}}", "length": "24582",
                         "dimensions": {"j": {"stop": 1}, "i": {"stop": 1}}}]},
    }


@needs_nginx
@pytest.mark.parametrize("kind", ["file_url", "template", "gen"])
def test_a_remote_reference_set_cannot_read_local_files(tmp_path, kind):
    """Before: exit 0 and the store's chunks held the bytes of the local 0600 file."""
    need_fixtures()
    root = tmp_path / "www"
    shutil.copytree(ERA5, root / "era5")
    secret = private_copy(ERA5 / "era5_small_20000101.nc", tmp_path / "private.nc")
    doc = hostile_reference_sets(secret)[kind]
    (root / "era5" / "evil.json").write_text(json.dumps(doc))
    store = tmp_path / "out.zarr"
    config = {"data_uri": None, "cache_store": str(store), "deploy_mode": "series"}
    with Nginx(root, tmp_path / "nginx") as server:
        config["data_uri"] = f"{server.url}/era5/evil.json"
        proc = run_cache(tmp_path, config)
        assert proc.returncode == 4, proc.stderr
        assert "local file" in proc.stderr and "allow_local_references" in proc.stderr, proc.stderr
        assert not store.exists()
        # The user may say they trust it: then the same set reads the local file (the test can fail).
        run_cache(tmp_path, dict(config, allow_local_references=True), check=0)
        assert store.exists()


def test_a_local_reference_set_still_reads_local_files(tmp_path):
    need_fixtures()
    secret = private_copy(ERA5 / "era5_small_20000101.nc", tmp_path / "era5_small_20000101.nc")
    doc = hostile_reference_sets(secret)["file_url"]
    for name in ("era5_small_20000102.nc", "era5_small_20000103.nc", "era5_small_20000104.nc"):
        shutil.copy(ERA5 / name, tmp_path / name)
    (tmp_path / "refs.json").write_text(json.dumps(doc))
    store = tmp_path / "out.zarr"
    run_cache(tmp_path, {"data_uri": str(tmp_path / "refs.json"), "cache_store": str(store),
                         "deploy_mode": "series"}, check=0)
    assert_matches(store, open_kerchunk(ERA5 / "refs.json"))


def secret_bytes(tmp_path):
    """A local 0600 file of float32 values no source of the test holds."""
    import numpy as np
    secret = tmp_path / "secret.bin"
    np.arange(100, 116, dtype="<f4").tofile(secret)
    os.chmod(secret, 0o600)
    return secret


def hdf5_with_outside_storage(tmp_path, kind):
    """An HDF5 file (what netCDF-C reads as NetCDF-4 with phony dimensions) whose dataset `v`
    keeps its data outside the file, in one of HDF5's three ways."""
    import h5py
    import numpy as np
    secret = secret_bytes(tmp_path)
    path = tmp_path / f"{kind}.h5"
    with h5py.File(path, "w") as f:
        f.attrs["title"] = "hostile"
        if kind == "external_storage":
            f.create_dataset("v", shape=(4, 4), dtype="<f4", external=[(str(secret), 0, 64)])
        elif kind == "virtual":
            other = tmp_path / "other.h5"
            with h5py.File(other, "w") as o:
                o.create_dataset("v", data=np.arange(16, dtype="<f4").reshape(4, 4))
            layout = h5py.VirtualLayout(shape=(4, 4), dtype="<f4")
            layout[:] = h5py.VirtualSource(str(other), "v", shape=(4, 4))
            f.create_virtual_dataset("v", layout, fillvalue=-1)
        elif kind == "external_link":
            other = tmp_path / "other.h5"
            with h5py.File(other, "w") as o:
                o.create_group("g").create_dataset("v", data=np.arange(16, dtype="<f4").reshape(4, 4))
            f["g"] = h5py.ExternalLink(str(other), "/g")
        f.create_dataset("w", data=np.zeros((4, 4), "<f4"))
    return path


@pytest.mark.parametrize("kind", ["external_storage", "virtual", "external_link"])
def test_hdf5_data_outside_the_file_is_refused(tmp_path, kind):
    """Before: exit 0 with fill values (zeros) in the store, verify agreeing; a remote file could
    make HDF5 open local files by name."""
    path = hdf5_with_outside_storage(tmp_path, kind)
    store = tmp_path / "out.zarr"
    config = {"data_uri": str(path), "cache_store": str(store), "deploy_mode": "series", "engine": "netcdf"}
    if kind == "external_link":
        config["group"] = "g"
    proc = run_cache(tmp_path, config)
    assert proc.returncode == 4, proc.stderr
    assert ("external" in proc.stderr or "virtual" in proc.stderr) and str(path) in proc.stderr, proc.stderr
    assert not store.exists()


@needs_nginx
def test_a_remote_hdf5_file_cannot_pull_local_files_in(tmp_path):
    path = hdf5_with_outside_storage(tmp_path, "external_storage")
    root = tmp_path / "www"
    root.mkdir()
    shutil.copy(path, root / "f.nc")
    store = tmp_path / "out.zarr"
    with Nginx(root, tmp_path / "nginx") as server:
        proc = run_cache(tmp_path, {"data_uri": f"{server.url}/f.nc", "cache_store": str(store),
                                    "deploy_mode": "series"})
    assert proc.returncode == 4, proc.stderr
    assert "external files" in proc.stderr, proc.stderr
    assert not store.exists()


def test_a_group_that_contains_itself_is_listed_once(tmp_path):
    """Before: a group hard-linked into itself was listed until memory ran out (6.8 GB)."""
    import h5py
    import numpy as np
    path = tmp_path / "loop.h5"
    with h5py.File(path, "w") as f:
        g = f.create_group("g")
        g["self"] = g  # a hard link: g/self/self/... is g
        f.create_dataset("v", data=np.arange(4, dtype="<f4"))
    out = subprocess.run([str(BIN), "inspect", str(path), "--json"], capture_output=True, text=True,
                         timeout=60, preexec_fn=memory_limit)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["groups"] == ["g"], out.stdout


def small_netcdf4(path):
    """A NetCDF-4 file as netCDF4-python writes it: dimension scales, DIMENSION_LIST references,
    an unlimited dimension, compressed chunks, strings and attributes: what libhdf5 dereferences."""
    import netCDF4
    import numpy as np
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("time", None)
        nc.createDimension("lat", 6)
        nc.createDimension("lon", 8)
        t = nc.createVariable("time", "i4", ("time",))
        t.units = "hours since 2000-01-01"
        t[:] = np.arange(4)
        nc.createVariable("lat", "f4", ("lat",))[:] = np.linspace(60, 50, 6)
        nc.createVariable("lon", "f4", ("lon",))[:] = np.linspace(0, 7, 8)
        v = nc.createVariable("d2m", "i2", ("time", "lat", "lon"), zlib=True, chunksizes=(2, 3, 4),
                              fill_value=-32767)
        v.scale_factor, v.add_offset, v.units = 0.01, 273.15, "K"
        v[:] = np.arange(4 * 6 * 8).reshape(4, 6, 8)
        s = nc.createVariable("station", str, ("lat",))
        s[:] = np.array([f"s{i}" for i in range(6)], dtype=object)
        nc.title = "mutation seed"


MUTANTS = 150


def test_mutated_netcdf4_files_end_in_a_documented_exit_code(tmp_path):
    """Each mutant (a few bytes changed, seeded) is described in a child: a libhdf5 crash or hang
    is exit 4 naming the file within the time limit, never a crash of ours, an internal error or
    a run that does not end. Before, the in-process fallback took the coordinator down."""
    import random
    seed = tmp_path / "seed.nc"
    small_netcdf4(seed)
    original = seed.read_bytes()
    rng = random.Random(26)
    outcomes = {}
    env = dict(os.environ, ZP_SCAN_TIMEOUT="5", ZP_CACHE_DIR="off")
    for k in range(MUTANTS):
        data = bytearray(original)
        for _ in range(rng.choice([1, 2, 4, 8])):
            at = rng.randrange(len(data))
            data[at] = rng.randrange(256) if rng.random() < 0.5 else data[at] ^ (1 << rng.randrange(8))
        path = tmp_path / f"mutant_{k:03d}.nc"
        path.write_bytes(bytes(data))
        proc = subprocess.run([str(BIN), "inspect", str(path), "--json"], capture_output=True, text=True,
                              timeout=20, env=env, preexec_fn=memory_limit)
        outcomes.setdefault(proc.returncode, []).append(path.name)
        assert proc.returncode in (0, 2, 4), (path.name, proc.returncode, proc.stderr[-2000:])
        if proc.returncode != 0:
            assert "internal error" not in proc.stderr and str(path) in proc.stderr, (path.name, proc.stderr)
        path.unlink()
    assert 0 in outcomes and 4 in outcomes, {k: len(v) for k, v in outcomes.items()}


def crc32c(data):
    """CRC-32C (Castagnoli), bit by bit: Zarr v3's shard index checksum."""
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def write_sharded_v3(folder, values, shard, inner, index_location):
    """A Zarr v3 store of one float32 array `v`, sharded, uncompressed, written by hand to the
    specification (zarr-python 2 cannot write v3, zarrita cannot place the index first)."""
    import numpy as np
    folder.mkdir()
    (folder / "zarr.json").write_text(json.dumps({"zarr_format": 3, "node_type": "group", "attributes": {}}))
    meta = {"zarr_format": 3, "node_type": "array", "shape": list(values.shape), "data_type": "float32",
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(shard)}},
            "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
            "fill_value": 0.0, "dimension_names": ["y", "x"], "attributes": {"units": "K"},
            "codecs": [{"name": "sharding_indexed", "configuration": {
                "chunk_shape": list(inner), "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
                "index_codecs": [{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "crc32c"}],
                "index_location": index_location}}]}
    (folder / "v").mkdir()
    (folder / "v" / "zarr.json").write_text(json.dumps(meta))
    per = [s // i for s, i in zip(shard, inner)]
    n = per[0] * per[1]
    index_bytes = 16 * n + 4
    for sy in range(values.shape[0] // shard[0]):
        for sx in range(values.shape[1] // shard[1]):
            body, entries = b"", []
            base = index_bytes if index_location == "start" else 0
            for iy in range(per[0]):
                for ix in range(per[1]):
                    y0, x0 = sy * shard[0] + iy * inner[0], sx * shard[1] + ix * inner[1]
                    chunk = np.ascontiguousarray(values[y0:y0 + inner[0], x0:x0 + inner[1]], "<f4").tobytes()
                    entries.append((base + len(body), len(chunk)))
                    body += chunk
            index = b"".join(o.to_bytes(8, "little") + s.to_bytes(8, "little") for o, s in entries)
            index += crc32c(index).to_bytes(4, "little")
            shard_bytes = index + body if index_location == "start" else body + index
            key = folder / "v" / "c" / str(sy)
            key.mkdir(parents=True, exist_ok=True)
            (key / str(sx)).write_bytes(shard_bytes)


@pytest.mark.parametrize("index_location", ["start", "end"])
def test_a_v3_shard_with_its_index_first_is_read(tmp_path, index_location):
    """Before: index_location "start" was refused as "points outside the shard's data"."""
    import numpy as np
    import xarray as xr
    values = np.arange(8 * 8, dtype="<f4").reshape(8, 8) * 0.5
    write_sharded_v3(tmp_path / "src.zarr", values, (4, 8), (2, 4), index_location)
    store = tmp_path / "out.zarr"
    run_cache(tmp_path, {"data_uri": str(tmp_path / "src.zarr"), "cache_store": str(store),
                         "deploy_mode": "series"}, check=0)
    got = xr.open_zarr(store).load()
    assert np.array_equal(got["v"].values, values)
    assert got["v"].attrs["units"] == "K"


def run_bounded(args, seconds=30):
    """Runs the command under 3 GB of address space; returns it and its wall time."""
    import time
    start = time.monotonic()
    proc = subprocess.run([str(BIN), *args], capture_output=True, text=True, timeout=seconds,
                          preexec_fn=memory_limit)
    return proc, time.monotonic() - start


def test_metadata_declaring_a_trillion_chunks_is_refused_at_once(tmp_path):
    """A few hundred bytes of metadata declaring 10^12 chunks (kerchunk, Zarr v2, v3, a v3 shard of
    2^32 inner chunks, an HDF5 dataset of 2^40 unallocated chunks). Before: GBs of memory, then
    bad_alloc or an internal error, up to 49 s."""
    import h5py
    zattrs = {"_ARRAY_DIMENSIONS": ["t", "x"]}
    zarray = {"zarr_format": 2, "shape": [1000000, 1000000], "chunks": [1, 1], "dtype": "<f4",
              "compressor": None, "fill_value": 0, "filters": None, "order": "C"}
    (tmp_path / "refs.json").write_text(json.dumps({"version": 1, "refs": {
        ".zgroup": json.dumps({"zarr_format": 2}), "v/.zarray": json.dumps(zarray), "v/.zattrs": json.dumps(zattrs)}}))
    v2 = tmp_path / "v2.zarr"
    (v2 / "v").mkdir(parents=True)
    (v2 / ".zgroup").write_text(json.dumps({"zarr_format": 2}))
    (v2 / "v" / ".zarray").write_text(json.dumps(zarray))
    (v2 / "v" / ".zattrs").write_text(json.dumps(zattrs))
    v3 = tmp_path / "v3.zarr"
    import numpy as np
    write_sharded_v3(v3, np.zeros((8, 8), "<f4"), (4, 8), (2, 4), "end")
    meta = json.loads((v3 / "v" / "zarr.json").read_text())
    meta["shape"] = [1 << 40, 1 << 40]
    meta["chunk_grid"]["configuration"]["chunk_shape"] = [1, 1]
    meta["codecs"] = [{"name": "bytes", "configuration": {"endian": "little"}}]
    (v3 / "v" / "zarr.json").write_text(json.dumps(meta))
    shard = tmp_path / "shard.zarr"
    write_sharded_v3(shard, np.zeros((8, 8), "<f4"), (4, 8), (2, 4), "end")
    meta = json.loads((shard / "v" / "zarr.json").read_text())
    meta["shape"] = [1 << 16, 1 << 16]
    meta["chunk_grid"]["configuration"]["chunk_shape"] = [1 << 16, 1 << 16]
    meta["codecs"][0]["configuration"]["chunk_shape"] = [1, 1]
    (shard / "v" / "zarr.json").write_text(json.dumps(meta))
    with h5py.File(tmp_path / "lazy.h5", "w") as f:
        f.create_dataset("v", shape=(1 << 40,), chunks=(1,), dtype="<f4", maxshape=(None,))
    for source, engine in [("refs.json", "kerchunk"), ("v2.zarr", "zarr"), ("v3.zarr", "zarr"),
                           ("shard.zarr", "zarr"), ("lazy.h5", "netcdf")]:
        proc, seconds = run_bounded(["inspect", str(tmp_path / source), "--engine", engine])
        assert proc.returncode == 4, (source, proc.returncode, proc.stderr[-2000:])
        assert "more than" in proc.stderr and "internal error" not in proc.stderr, (source, proc.stderr)
        assert seconds < 10, (source, seconds)


@pytest.mark.parametrize("name", ["zarr.json", "v" * 300])
def test_an_array_name_no_store_can_hold_is_refused_before_the_store_exists(tmp_path, name):
    """Before: refused only after the store folder was created (and a v3 'zarr.json' array would
    have been the store's own metadata)."""
    zarray = {"zarr_format": 2, "shape": [4], "chunks": [4], "dtype": "<f4", "compressor": None,
              "fill_value": 0, "filters": None, "order": "C"}
    refs = {".zgroup": json.dumps({"zarr_format": 2}), f"{name}/.zarray": json.dumps(zarray),
            f"{name}/.zattrs": json.dumps({"_ARRAY_DIMENSIONS": ["x"]}),
            f"{name}/0": "base64:" + __import__("base64").b64encode(bytes(16)).decode()}
    (tmp_path / "refs.json").write_text(json.dumps({"version": 1, "refs": refs}))
    store = tmp_path / "out.zarr"
    proc = run_cache(tmp_path, {"data_uri": str(tmp_path / "refs.json"), "cache_store": str(store),
                                "deploy_mode": "series", "zarr_format": 3})
    assert proc.returncode == 2, proc.stderr
    assert "cannot be a Zarr array name" in proc.stderr or "255 bytes" in proc.stderr, proc.stderr
    assert not store.exists()


def test_a_damaged_root_group_is_the_files_fault(tmp_path):
    """Before: exit 2 naming the config key 'group', though no group was asked for."""
    seed = tmp_path / "seed.nc"
    small_netcdf4(seed)
    data = bytearray(seed.read_bytes())
    assert data[8] in (2, 3), "superblock version 2 or 3 (netCDF-4 files)"
    root = int.from_bytes(data[36:44], "little")  # the root group's object header address
    assert data[root:root + 4] == b"OHDR"
    data[root + 40:root + 48] = bytes(8)  # inside its messages: the link info is damaged
    bad = tmp_path / "bad_root.nc"
    bad.write_bytes(bytes(data))
    proc = subprocess.run([str(BIN), "inspect", str(bad)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 4, (proc.returncode, proc.stderr)
    assert str(bad) in proc.stderr and "config key" not in proc.stderr, proc.stderr


def test_a_fifo_as_a_source_or_a_chunk_reference_never_hangs(tmp_path):
    """A FIFO among the files, or named by a local reference set: before, the open blocked forever.
    The NetCDF case also exercises the scan child's time limit (libhdf5 blocks opening it)."""
    need_fixtures()
    fifo = tmp_path / "day.nc"
    os.mkfifo(fifo)
    store = tmp_path / "out.zarr"
    env = {"ZP_SCAN_TIMEOUT": "3", "ZP_CACHE_DIR": "off"}
    import time
    start = time.monotonic()
    proc = run_cache(tmp_path, {"data_uri": str(fifo), "cache_store": str(store), "deploy_mode": "series",
                                "engine": "netcdf"}, env=env)
    assert proc.returncode == 4 and str(fifo) in proc.stderr, proc.stderr
    assert time.monotonic() - start < 30
    refs = json.loads((ERA5 / "refs.json").read_text())["refs"]
    refs = {k: ([str(fifo)] + v[1:] if isinstance(v, list) else v) for k, v in refs.items()}
    (tmp_path / "refs.json").write_text(json.dumps({"version": 1, "refs": refs}))
    proc = run_cache(tmp_path, {"data_uri": str(tmp_path / "refs.json"), "cache_store": str(store),
                                "deploy_mode": "series"}, env=env)
    assert proc.returncode == 4 and "not a regular file" in proc.stderr, proc.stderr
    assert not (store / ".zarr-parallel" / "complete.json").exists()


def zarr_over_http_folder(root, n_chunks):
    """A Zarr v2 store with consolidated metadata declaring `n_chunks` chunks and holding none: over
    plain HTTP each one is asked for with HEAD (a web server cannot list)."""
    zarray = {"zarr_format": 2, "shape": [n_chunks], "chunks": [1], "dtype": "<f4", "compressor": None,
              "fill_value": 0, "filters": None, "order": "C"}
    meta = {"zarr_consolidated_format": 1, "metadata": {
        ".zgroup": {"zarr_format": 2}, ".zattrs": {}, "v/.zarray": zarray, "v/.zattrs": {"_ARRAY_DIMENSIONS": ["x"]}}}
    root.mkdir(parents=True)
    (root / ".zmetadata").write_text(json.dumps(meta))
    (root / ".zgroup").write_text(json.dumps({"zarr_format": 2}))


@needs_nginx
def test_a_store_over_http_declaring_millions_of_chunks_is_refused_before_asking(tmp_path):
    """Before: 5 M declared chunks were asked for one by one (540 k HEADs and 4 GB in 60 s)."""
    www = tmp_path / "www"
    zarr_over_http_folder(www / "big.zarr", 2_000_000)
    zarr_over_http_folder(www / "small.zarr", 3000)
    with Nginx(www, tmp_path / "nginx") as server:
        proc, seconds = run_bounded(["inspect", f"{server.url}/big.zarr", "--engine", "zarr"], seconds=120)
        assert proc.returncode == 4 and "one by one over plain HTTP" in proc.stderr, proc.stderr
        assert seconds < 10 and len(server.requests()) < 10, (seconds, len(server.requests()))
        # Under the budget, the chunks are asked for in batches: all 3,000, each once.
        proc, _ = run_bounded(["inspect", f"{server.url}/small.zarr", "--engine", "zarr"], seconds=120)
        assert proc.returncode == 0, proc.stderr
        heads = [p for p, status, n, rng in server.requests() if p.startswith("/small.zarr/v/")]
        assert len(heads) == 3000 and len(set(heads)) == 3000, len(heads)


# Found by a hostile review of this work (issue 26), each reproduced on the build before its fix.

def test_an_s3_key_cannot_climb_into_another_bucket(tmp_path):
    """A reference set in bucket `pub` whose chunks are `s3://pub/../priv/...`: libcurl removes the
    dot segments before it signs, so the request for bucket priv was signed with the key scoped to
    pub. Now such a key is refused and no request for priv carries the key."""
    from servers import FileServer
    need_fixtures()
    www = tmp_path / "www"
    (www / "pub").mkdir(parents=True)
    (www / "priv").mkdir()
    shutil.copy(ERA5 / "era5_small_20000101.nc", www / "priv" / "day.nc")
    refs = json.loads((ERA5 / "refs.json").read_text())["refs"]
    refs = {k: (["s3://pub/../priv/day.nc"] + v[1:] if isinstance(v, list) else v) for k, v in refs.items()}
    (www / "pub" / "refs.json").write_text(json.dumps({"version": 1, "refs": refs}))
    store = tmp_path / "out.zarr"
    with FileServer(www) as srv:
        proc = run_cache(tmp_path, {"data_uri": "s3://pub/refs.json", "cache_store": str(store),
                                    "deploy_mode": "series",
                                    "storage_options": {"key": "AKIAVICTIMKEY", "secret": "victimsecret",
                                                        "endpoint_url": srv.url}})
        signed_priv = [p for m, p, h in srv.seen if p.startswith("/priv") and "AKIAVICTIMKEY" in str(h)]
    assert proc.returncode == 4 and "'..' segment" in proc.stderr, proc.stderr
    assert not signed_priv, signed_priv


def test_messages_quote_locations_redacted_whatever_the_command(tmp_path):
    """`inspect` printed a reference set's chunk URL with its password and signature."""
    from servers import FileServer
    www = tmp_path / "www"
    www.mkdir()
    zarray = {"zarr_format": 2, "shape": [4], "chunks": [4], "dtype": "<f4", "compressor": None,
              "fill_value": 0, "filters": None, "order": "C"}
    with FileServer(www) as srv:
        chunk = srv.url.replace("http://", "http://alice:hunter2@") + "/missing.nc?X-Amz-Signature=SIGSECRET"
        (www / "leak.json").write_text(json.dumps({"version": 1, "refs": {
            ".zgroup": json.dumps({"zarr_format": 2}), "v/.zarray": json.dumps(zarray),
            "v/.zattrs": json.dumps({"_ARRAY_DIMENSIONS": ["x"]}), "v/0": [chunk]}}))
        proc = subprocess.run([str(BIN), "inspect", f"{srv.url}/leak.json"], capture_output=True, text=True,
                              timeout=60)
    assert proc.returncode == 4, proc.stderr
    assert "hunter2" not in proc.stderr and "SIGSECRET" not in proc.stderr, proc.stderr
    assert "missing.nc" in proc.stderr


def test_a_dimension_coordinate_too_long_to_read_whole_is_refused(tmp_path):
    """A 6 kB file declaring a coordinate of 2^27 doubles (no chunk written): the scanner read it
    whole, 2 GB. Now it is counted first."""
    import netCDF4
    path = tmp_path / "bigcoord.nc"
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("x", 1 << 27)
        nc.createVariable("x", "f8", ("x",), chunksizes=(1 << 13,))
        nc.createVariable("v", "f4", ("x",), chunksizes=(1 << 13,))
    proc, seconds = run_bounded(["inspect", str(path)])
    assert proc.returncode == 4 and "dimension coordinate" in proc.stderr, proc.stderr
    assert seconds < 10


def test_a_resume_reads_only_the_files_of_the_source_it_has_now(tmp_path):
    """An edited plan.json (a local 0600 file appended to its files, chunks pointed at it, the digest
    in state.json rewritten too): the resume copied the file into a 0644 chunk and marked the store
    complete. Now a resume reads exactly the files the config's source has, and refuses (exit 5)."""
    import base64
    import hashlib
    need_fixtures()
    victim = tmp_path / "victim_secret"
    victim.write_bytes(b"TOP SECRET victim data " * 100)
    os.chmod(victim, 0o600)
    store = tmp_path / "out.zarr"
    config = {"data_uri": str(ERA5 / "refs.json"), "cache_store": str(store), "deploy_mode": "series"}
    run_cache(tmp_path, config, check=0)
    side = store / ".zarr-parallel"
    plan = json.loads((side / "plan.json").read_text())
    st = victim.stat()
    plan["files"].append(str(victim))
    plan["sources"].append([str(victim), st.st_size, st.st_mtime_ns])
    text = json.dumps(plan)
    (side / "plan.json").write_text(text)
    state = json.loads((side / "state.json").read_text())
    state["plan_sha256"] = hashlib.sha256(text.encode()).hexdigest()
    (side / "state.json").write_text(json.dumps(state))
    (side / "sources.json").write_text(json.dumps(plan["sources"]))
    (side / "complete.json").unlink()
    for done in (side / "jobs").glob("*.done"):
        done.unlink()
    proc = run_cache(tmp_path, dict(config, resume=True))
    assert proc.returncode == 5 and "reads other files" in proc.stderr, proc.stderr
    assert not (side / "complete.json").exists()
    assert not any(b"TOP SECRET" in p.read_bytes() for p in store.rglob("*") if p.is_file())


def test_a_worker_reads_no_file_the_plans_sources_lack(tmp_path):
    """plan.json edited (its digest in state.json rewritten too) so that one of its `files` is a
    local 0600 file its `sources` lack: ChunkReader::check_unchanged found no fingerprint to
    compare and let the worker read it (exit 0, every job done from the other file's bytes, the
    planned file deleted). Now the worker refuses (exit 5), naming the file."""
    import hashlib
    need_fixtures()
    src = tmp_path / "src"
    shutil.copytree(ERA5, src)
    day1 = src / "era5_small_20000101.nc"
    victim = private_copy(day1, tmp_path / "victim.nc")
    store = tmp_path / "out.zarr"
    run_cache(tmp_path, {"data_uri": str(src / "refs.json"), "cache_store": str(store),
                         "deploy_mode": "series"}, check=0)
    side = store / ".zarr-parallel"
    plan = json.loads((side / "plan.json").read_text())
    i = next(k for k, f in enumerate(plan["files"]) if f.endswith("era5_small_20000101.nc"))
    plan["files"][i] = str(victim)
    assert all(s[0] != str(victim) for s in plan["sources"])
    text = json.dumps(plan)
    (side / "plan.json").write_text(text)
    state = json.loads((side / "state.json").read_text())
    state["plan_sha256"] = hashlib.sha256(text.encode()).hexdigest()
    (side / "state.json").write_text(json.dumps(state))
    (side / "complete.json").unlink()
    for done in (side / "jobs").glob("*.done"):
        done.unlink()
    day1.unlink()  # whatever the worker reads for it now can only come from the victim
    jobs = [str(k) for k in range(len(plan["jobs"]))]
    proc = subprocess.run([str(BIN), "worker", str(side / "plan.json"), *jobs], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 5, (proc.returncode, proc.stderr)
    assert str(victim) in proc.stderr and "not among the sources" in proc.stderr, proc.stderr


@needs_nginx
def test_a_served_netcdf4_file_that_crashes_libhdf5_ends_the_run_with_exit_4(tmp_path):
    """A NetCDF-4 file by URL was described by libhdf5 in the coordinator: the corpus file that
    crashes libhdf5, served by nginx, killed the run (SIGSEGV, found by a hostile review). Now a
    child describes it."""
    www = tmp_path / "www"
    www.mkdir()
    shutil.copy(Path(__file__).parents[1] / "corpus" / "netcdf" / "libhdf5_segfault.nc", www / "day.nc")
    store = tmp_path / "out.zarr"
    with Nginx(www, tmp_path / "nginx") as server:
        url = f"{server.url}/day.nc"
        proc = run_cache(tmp_path, {"data_uri": url, "cache_store": str(store), "deploy_mode": "series"})
    assert proc.returncode == 4, (proc.returncode, proc.stderr)
    assert url in proc.stderr and ("crashed" in proc.stderr or "failed" in proc.stderr), proc.stderr
    assert not store.exists()


# Hostile review, session 15: small metadata that asked for memory without bound.

def test_a_kerchunk_template_rendering_megabytes_is_refused(tmp_path):
    """A 66 KB reference set rendered every gen URL from a 64 KiB template: 4M references asked for
    256 GB (bad_alloc, exit 1). Rendered strings are now limited (8 KiB each, 512 MiB in all)."""
    refs = {".zgroup": json.dumps({"zarr_format": 2}),
            "x/.zarray": json.dumps({"shape": [20000], "chunks": [1], "dtype": "<f4", "compressor": None,
                                     "filters": None, "fill_value": None, "order": "C", "zarr_format": 2}),
            "x/.zattrs": json.dumps({"_ARRAY_DIMENSIONS": ["t"]})}
    doc = {"version": 1, "templates": {"u": str(tmp_path / ("a" * 200)) * 320}, "refs": refs,
           "gen": [{"key": "x/{{i}}", "url": "{{u}}", "offset": "0", "length": "4",
                    "dimensions": {"i": {"stop": 20000}}}]}
    (tmp_path / "refs.json").write_text(json.dumps(doc))
    proc, seconds = run_bounded(["inspect", str(tmp_path / "refs.json")])
    assert proc.returncode == 4, proc.stderr
    assert "renders to more than 8192 bytes" in proc.stderr, proc.stderr
    # Many references of legal length, each its own URL, meet the budget of all of them.
    doc["templates"]["u"] = "/" + "b" * 8000
    doc["gen"][0]["url"] = "{{u}}{{i}}"
    doc["gen"][0]["dimensions"]["i"]["stop"] = 4000000
    (tmp_path / "refs.json").write_text(json.dumps(doc))
    proc, seconds = run_bounded(["inspect", str(tmp_path / "refs.json")], seconds=120)
    assert proc.returncode == 4, proc.stderr
    assert "in all; refusing them" in proc.stderr, proc.stderr


def test_a_grib_file_of_distinct_times_and_steps_is_refused_before_n_squared(tmp_path):
    """5,000 messages (0.9 MB), each at its own time and step: valid_time (time x step doubles)
    and the manifest were built before the chunk budget was met (0.6 GB and 12 s at 3,000; 20 GB
    at 50,000), and finding distinct values compared every pair."""
    from grib_files import load_oracle, write_messages
    why = load_oracle()
    if why:
        pytest.skip(why)
    import datetime
    d0 = datetime.date(1900, 1, 1)
    grid = {"Ni": 4, "Nj": 2, "latitudeOfFirstGridPointInDegrees": 10.0, "longitudeOfFirstGridPointInDegrees": 0.0,
            "latitudeOfLastGridPointInDegrees": 0.0, "longitudeOfLastGridPointInDegrees": 30.0,
            "iDirectionIncrementInDegrees": 10.0, "jDirectionIncrementInDegrees": 10.0}
    messages = [dict(grid, dataDate=int((d0 + datetime.timedelta(days=i)).strftime("%Y%m%d")), step=i,
                     values=[1.0] * 8) for i in range(5000)]
    path = tmp_path / "distinct.grib2"
    write_messages(path, messages)
    proc, seconds = run_bounded(["inspect", str(path)], seconds=120)
    assert proc.returncode == 4, proc.stderr
    assert "messages in the grid" in proc.stderr and str(path) in proc.stderr, proc.stderr


def test_v3_shard_indexes_of_too_many_inner_chunks_are_refused_unread(tmp_path):
    """An N x 1 array in 1 x 2^20 shards of 1 x 1 chunks: each shard's index is 16 MiB though it
    holds one chunk, and all of them were read into memory at once (4.2 GB at N=256)."""
    store = tmp_path / "src.zarr"
    store.mkdir()
    (store / "zarr.json").write_text(json.dumps({"zarr_format": 3, "node_type": "group", "attributes": {}}))
    n = 40
    meta = {"zarr_format": 3, "node_type": "array", "shape": [n, 1], "data_type": "float32",
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [1, 1 << 20]}},
            "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
            "fill_value": 0.0, "dimension_names": ["y", "x"], "attributes": {},
            "codecs": [{"name": "sharding_indexed", "configuration": {
                "chunk_shape": [1, 1], "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
                "index_codecs": [{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "crc32c"}]}}]}
    (store / "v" / "c").mkdir(parents=True)
    (store / "v" / "zarr.json").write_text(json.dumps(meta))
    for y in range(n):
        (store / "v" / "c" / str(y)).mkdir()
        with open(store / "v" / "c" / str(y) / "0", "wb") as f:
            f.truncate((16 << 20) + 4)  # sparse: a whole index, 16 MiB, costs nothing on disk
    proc, seconds = run_bounded(["inspect", str(store)])
    assert proc.returncode == 4, proc.stderr
    assert "inner chunks in all" in proc.stderr, proc.stderr


def test_a_sparse_bookkeeping_file_is_not_read_whole(tmp_path):
    """A 2 GB sparse heartbeat planted in a store made `status` allocate 2 GB (16 GB: bad_alloc)."""
    import numpy as np
    import xarray as xr
    xr.Dataset({"t": (("x",), np.arange(100, dtype="<f4"))}).to_netcdf(tmp_path / "src.nc")
    store = tmp_path / "s.zarr"
    run_cache(tmp_path, {"data_uri": str(tmp_path / "src.nc"), "cache_store": str(store),
                         "deploy_mode": "series"}, check=0)
    beats = store / ".zarr-parallel" / "heartbeats"
    beats.mkdir(exist_ok=True)
    with open(beats / "w.json", "wb") as f:
        f.truncate(4 << 30)
    proc, seconds = run_bounded(["status", str(store)])
    assert proc.returncode == 0, proc.stderr
    assert "internal error" not in proc.stderr


def test_a_worker_refuses_a_plan_edited_after_its_coordinator_read_it(tmp_path):
    """Whoever can write a store can rewrite plan.json, its sources and the digest in state.json
    together: a worker (what SLURM, MPI and dask run) then read the file the plan named. Workers
    now check the plan against the digest their coordinator hands them (argv, MPI, dask task)."""
    import glob
    import hashlib
    import os
    import subprocess
    from conftest import BIN, SAMPLE_BIN, traced_env
    data, private = tmp_path / "data", tmp_path / "private"
    subprocess.run([str(SAMPLE_BIN), "--out", str(data), "--prefix", "d_", "--files", "1", "--steps", "4",
                    "--lat", "9", "--lon", "12"], check=True, capture_output=True)
    private.mkdir()
    victim = private / "not-in-any-config.nc"
    victim.write_bytes(next(data.glob("*.nc")).read_bytes())
    store = tmp_path / "out.zarr"
    run_cache(tmp_path, {"data_uri": str(data / "d_*.nc"), "cache_store": str(store), "deploy_mode": "series",
                         "recommend_changes": False}, check=0)
    side = store / ".zarr-parallel"
    handed = hashlib.sha256((side / "plan.json").read_bytes()).hexdigest()  # as a coordinator read it
    from test_hostile_review17_fixplan import rewrite_plan
    rewrite_plan(side, next(data.glob("*.nc")).resolve(), victim)
    for f in glob.glob(str(side / "jobs" / "*")):
        os.remove(f)
    (side / "complete.json").unlink()
    trace = tmp_path / "trace.txt"
    proc = subprocess.run(["strace", "-f", "-e", "trace=openat", "-o", str(trace), str(BIN), "worker",
                           str(side / "plan.json"), "0", "--plan-sha256", handed], capture_output=True, text=True,
                          env=traced_env())
    assert proc.returncode == 5 and "changed after the run's coordinator read it" in proc.stderr, proc.stderr
    assert str(victim) not in trace.read_text()
