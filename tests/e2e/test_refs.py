"""`zarr-parallel refs`: kerchunk reference sets of NetCDF-4 files, read back with fsspec + xarray
(and by our own kerchunk engine) and compared with xarray's reading of the files themselves."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

sys.path.insert(0, str(Path(__file__).parent))
from conftest import BIN, ERA5, need_fixtures, run_cache, store_files  # noqa: E402


def refs(*args):
    return subprocess.run([str(BIN), "refs", *map(str, args)], capture_output=True, text=True, timeout=300)


def open_refs(path, **kw):
    return xr.open_dataset("reference://", engine="zarr",
                           backend_kwargs={"consolidated": False,
                                           "storage_options": {"fo": json.loads(Path(path).read_text())}},
                           **kw).load()


def same_attrs(a, b):
    if a.keys() != b.keys():
        return False
    for k in a:
        x, y = a[k], b[k]
        if x is None or y is None:
            if x is y:
                continue
            return False
        try:
            if np.isnan(x) and np.isnan(y):
                continue
        except (TypeError, ValueError):
            pass
        if not np.array_equal(np.asarray(x), np.asarray(y)):
            return False
    return True


def assert_same(got, expected):
    assert set(got.variables) == set(expected.variables)
    for v in expected.variables:
        g, e = got[v], expected[v]
        assert g.dims == e.dims and g.dtype == e.dtype, (v, g.dims, e.dims, g.dtype, e.dtype)
        assert np.array_equal(g.values, e.values, equal_nan=g.dtype.kind in "fc"), v
        assert same_attrs(g.attrs, e.attrs), (v, g.attrs, e.attrs)
        for k in ("_FillValue", "units", "calendar", "scale_factor", "add_offset"):
            ge, ee = g.encoding.get(k), e.encoding.get(k)
            assert same_attrs({k: ge}, {k: ee}), (v, k, ge, ee)
    assert same_attrs(got.attrs, expected.attrs)


def open_files(files, **kw):
    files = sorted(map(str, files))
    if len(files) == 1:
        return xr.open_dataset(files[0], **kw).load()
    return xr.open_mfdataset(files, combine="nested", concat_dim="time", data_vars="minimal", coords="minimal",
                             compat="override", **kw).load()


def assert_refs_read_as_the_files(tmp_path, pattern, **cache_extra):
    """`refs` of the glob read by fsspec + xarray (decoded and raw) as xarray reads the files, and
    cached by our kerchunk engine byte-identical to caching the files."""
    out = tmp_path / "refs.json"
    proc = refs(str(pattern), "-o", out)
    assert proc.returncode == 0, proc.stderr
    files = sorted(Path(pattern).parent.glob(Path(pattern).name))
    for kw in ({}, {"mask_and_scale": False, "decode_times": False}):
        assert_same(open_refs(out, **kw), open_files(files, **kw))
    stores = []
    for uri, name in ((out, "r.zarr"), (pattern, "f.zarr")):
        stores.append(tmp_path / name)
        run_cache(tmp_path, {"data_uri": str(uri), "cache_store": str(stores[-1]), "deploy_mode": "series",
                             **cache_extra}, check=0)
    a, b = (store_files(s) for s in stores)
    assert {k: v for k, v in a.items() if not k.endswith((".zattrs", ".zmetadata"))} == \
        {k: v for k, v in b.items() if not k.endswith((".zattrs", ".zmetadata"))}


def test_multi_file_netcdf4_reads_as_the_files(tmp_path):
    need_fixtures()
    assert_refs_read_as_the_files(tmp_path, ERA5 / "era5_small_*.nc", chunks={"time": 24})


@pytest.mark.parametrize("fmt", ["NETCDF3_CLASSIC", "NETCDF3_64BIT_OFFSET", "NETCDF3_64BIT_DATA"])
def test_netcdf3_files_read_as_the_files(tmp_path, fmt):
    """NetCDF-3 records as byte ranges (big-endian, one per record and variable, several record
    variables interleaved), joined over files; a packed short with _FillValue, a scalar."""
    import netCDF4
    for day in range(3):
        p = tmp_path / f"c3_{day}.nc"
        with netCDF4.Dataset(p, "w", format=fmt) as nc:
            nc.title = "classic"
            nc.createDimension("time", None)
            nc.createDimension("y", 3)
            nc.createDimension("x", 5)
            t = nc.createVariable("time", "f8", ("time",))
            t.units, t.calendar = "days since 2000-01-01", "360_day"
            t[:] = np.arange(4) + 4 * day
            v = nc.createVariable("v", "i2", ("time", "y", "x"), fill_value=np.int16(-99))
            v.scale_factor = np.float32(0.5)
            v[:] = np.arange(60).reshape(4, 3, 5) + day
            v[0, 0, 0] = np.ma.masked
            nc.createVariable("b", "i1", ("time", "x"))[:] = np.ones((4, 5)) * day
            nc.createVariable("y", "f4", ("y",))[:] = [1, 2, 3]
            nc.createVariable("z", "f8", ("y", "x"))[:] = np.ones((3, 5))
            nc.createVariable("crs", "i4", ())[...] = 7
    assert_refs_read_as_the_files(tmp_path, tmp_path / "c3_*.nc")


def test_relative_paths_move_with_their_files(tmp_path):
    need_fixtures()
    src = tmp_path / "a"
    shutil.copytree(ERA5, src)
    assert refs(src / "era5_small_2000010[12].nc", "-o", src / "two.json", "--relative").returncode == 0
    doc = json.loads((src / "two.json").read_text())
    assert all(not v[0].startswith("/") for v in doc["refs"].values() if isinstance(v, list))
    moved = tmp_path / "b"
    src.rename(moved)
    import os
    cwd = os.getcwd()
    os.chdir(moved)  # fsspec resolves relative paths against the working folder
    try:
        got = open_refs(moved / "two.json")
    finally:
        os.chdir(cwd)
    assert_same(got, open_files([moved / "era5_small_20000101.nc", moved / "era5_small_20000102.nc"]))


def test_packed_360_day_fill_values_checksums_and_scalars(tmp_path):
    import netCDF4
    paths = []
    for day in range(3):
        p = tmp_path / f"m{day}.nc"
        with netCDF4.Dataset(p, "w") as nc:
            nc.createDimension("time", None)
            nc.createDimension("y", 5)
            t = nc.createVariable("time", "f8", ("time",))
            t.units, t.calendar = "days since 2000-01-01", "360_day"
            t[:] = np.arange(4) / 4 + day
            v = nc.createVariable("v", "i2", ("time", "y"), fill_value=np.int16(-32767), zlib=True, shuffle=True,
                                  chunksizes=(4, 5))
            v.scale_factor, v.add_offset, v.units = 0.01, 280.0, "K"
            data = np.ma.masked_array(np.arange(20, dtype="f8").reshape(4, 5) / 10 + 280 + day,
                                      mask=np.eye(4, 5, dtype=bool))
            v[:] = data
            s = nc.createVariable("height", "f4", ())
            s[...] = 2.0
            s.units = "m"
            nc.title = "mixed"
        paths.append(p)
    out = tmp_path / "m.json"
    proc = refs(tmp_path / "m*.nc", "-o", out)
    assert proc.returncode == 0, proc.stderr
    for kw in ({}, {"mask_and_scale": False, "decode_times": False}):
        assert_same(open_refs(out, **kw), open_files(paths, **kw))


def test_attributes_beyond_ascii_are_readable_through_fsspec(tmp_path):
    """fsspec hands a reference set's inline metadata to zarr-python 2, which decodes it as ASCII:
    "°C" must be written as kerchunk writes it, "\\u00b0C"."""
    from test_fidelity import text_attributes_file
    for i in range(2):
        text_attributes_file(tmp_path / f"att{i}.nc")
    assert_refs_read_as_the_files(tmp_path, tmp_path / "att*.nc")
    assert open_refs(tmp_path / "refs.json").t2m.attrs["units"] == "°C"


def test_fletcher32_applied_first_stays_a_filter(tmp_path):
    """netCDF-C applies fletcher32 before shuffle and zlib, so the checksum is inside the compressed
    stream: it stays numcodecs' fletcher32 filter (numcodecs >= 0.12 reads it; Debian's 0.11 cannot,
    so our kerchunk engine is the reader here)."""
    import netCDF4
    p = tmp_path / "c.nc"
    with netCDF4.Dataset(p, "w") as nc:
        nc.createDimension("time", 6)
        nc.createDimension("y", 5)
        nc.createVariable("time", "i4", ("time",))[:] = np.arange(6)
        c = nc.createVariable("checked", "f4", ("time", "y"), zlib=True, fletcher32=True, chunksizes=(3, 5))
        c[:] = np.arange(30, dtype="f4").reshape(6, 5)
    out = tmp_path / "c.json"
    assert refs(p, "-o", out).returncode == 0
    zarray = json.loads(json.loads(out.read_text())["refs"]["checked/.zarray"])
    assert [f["id"] for f in zarray["filters"]] == ["fletcher32", "shuffle"] and zarray["compressor"]["id"] == "zlib"
    store = tmp_path / "c.zarr"
    run_cache(tmp_path, {"data_uri": str(out), "cache_store": str(store), "deploy_mode": "series"}, check=0)
    assert np.array_equal(xr.open_zarr(store)["checked"].values, xr.open_dataset(p)["checked"].values)


def test_what_a_reference_set_cannot_hold_is_refused_and_foreign_files_are_kept(tmp_path):
    need_fixtures()
    import netCDF4
    with netCDF4.Dataset(tmp_path / "text.nc", "w") as nc:  # variable-length strings (char arrays are read)
        nc.createDimension("s", 2)
        nc.createVariable("names", str, ("s",))[:] = np.array(["ab", "cd"], dtype=object)
    proc = refs(tmp_path / "text.nc", "-o", tmp_path / "c.json")
    assert proc.returncode == 4 and "text.nc" in proc.stderr and "'names'" in proc.stderr, proc.stderr
    assert not (tmp_path / "c.json").exists()
    mine = tmp_path / "notes.json"
    mine.write_text('{"my": "notes"}')
    proc = refs(ERA5 / "era5_small_20000101.nc", "-o", mine)
    assert proc.returncode == 5 and "notes.json" in proc.stderr, proc.stderr
    assert mine.read_text() == '{"my": "notes"}'
    ours = tmp_path / "ours.json"
    assert refs(ERA5 / "era5_small_20000101.nc", "-o", ours).returncode == 0
    assert refs(ERA5 / "era5_small_20000102.nc", "-o", ours).returncode == 0  # ours: replaced
    assert "era5_small_20000102.nc" in ours.read_text()
    typo = tmp_path / "no_such_folder" / "r.json"  # a mistyped path makes no folders
    proc = refs(ERA5 / "era5_small_20000101.nc", "-o", typo)
    assert proc.returncode == 5 and "does not exist" in proc.stderr, proc.stderr
    assert not typo.parent.exists()


def test_uncompressed_variables_over_16_mib_read_whole(tmp_path):
    """Uncompressed NetCDF-3 fixed variables and HDF5 contiguous ones are cut into ~16 MiB slabs;
    zarr reads every chunk at its full size, so a short last slab made fsspec + xarray fail
    ("cannot reshape"). The last slab now runs on into the file's next bytes (zarr drops what lies
    past the shape); a variable that ends the file is cut into slabs that divide it exactly (here
    257 rows: one a slab), or held as one chunk when such slabs would be tiny (a prime length)."""
    import netCDF4
    three = tmp_path / "fixed3.nc"
    with netCDF4.Dataset(three, "w", format="NETCDF3_64BIT_OFFSET") as nc:
        nc.createDimension("y", 1001)
        nc.createDimension("x", 4500)
        nc.createDimension("r", 257)
        nc.createDimension("c", 17000)
        nc.createVariable("v", "f4", ("y", "x"))[:] = np.arange(1001 * 4500, dtype="f4").reshape(1001, 4500)
        nc.createVariable("w", "i4", ("r", "c"))[:] = np.arange(257 * 17000, dtype="i4").reshape(257, 17000)
    four = tmp_path / "contiguous4.nc"
    with netCDF4.Dataset(four, "w") as nc:
        nc.createDimension("n", 2097169)
        nc.createVariable("line", "f8", ("n",), contiguous=True)[:] = np.arange(2097169) * 0.5
    for src in (three, four):
        out = tmp_path / (src.stem + ".json")
        proc = refs(src, "-o", out)
        assert proc.returncode == 0, proc.stderr
        for kw in ({}, {"mask_and_scale": False}):
            assert_same(open_refs(out, **kw), open_files([src], **kw))
    doc = json.loads((tmp_path / "fixed3.json").read_text())["refs"]
    assert doc["v/1.0"][2] == doc["v/0.0"][2] == 932 * 4500 * 4  # the last slab runs on into w's bytes
    assert json.loads(doc["w/.zarray"])["chunks"] == [1, 17000] and doc["w/256.0"][2] == 68000
    line = json.loads(json.loads((tmp_path / "contiguous4.json").read_text())["refs"]["line/.zarray"])
    assert line["chunks"] == [2097169]


def test_never_written_chunks_read_as_the_file_gives_them(tmp_path):
    """HDF5 chunks never written read as the dataset's fill value (netCDF-C's default fill; h5py's
    0). Their keys were left absent: with no _FillValue the fill_value was null, and Debian's fsspec
    (2022.11) raises KeyError for any absent key (fixed in fsspec 2023.12). They are now held
    inline, the fill chunk encoded as the variable's chunks are."""
    import h5py
    import netCDF4
    src = tmp_path / "holes.nc"
    with netCDF4.Dataset(src, "w") as nc:
        nc.createDimension("t", 8)
        nc.createDimension("x", 6)
        nc.createVariable("packed", "f4", ("t", "x"), chunksizes=(2, 6), zlib=True, shuffle=True)[0:2] = 1.5
        nc.createVariable("plain", "i2", ("t", "x"), chunksizes=(2, 6))[4:6] = 3
        nc.createVariable("filled", "f8", ("t", "x"), chunksizes=(2, 6), fill_value=-1.0)[6:8] = 2.0
    made = tmp_path / "h5holes.h5"
    with h5py.File(made, "w") as f:
        d = f.create_dataset("counts", shape=(6, 4), dtype=">u2", chunks=(2, 4), compression="gzip")
        d[2:4] = 7
    for p in (src, made):
        out = tmp_path / (p.stem + ".json")
        proc = refs(p, "-o", out)
        assert proc.returncode == 0, proc.stderr
        for kw in ({}, {"mask_and_scale": False}):
            assert_same(open_refs(out, **kw), open_files([p], **kw))
    doc = json.loads((tmp_path / "holes.json").read_text())["refs"]
    assert all(k in doc for k in ("filled/0.0", "plain/0.0", "packed/3.0"))
