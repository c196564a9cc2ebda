"""Layouts of real archives (issue 27): each source made by netCDF4-python or h5py from Debian, cached
with defaults and compared with xarray's reading of it, decoded and raw (bench/fidelity_sweep.py's
comparison, bit for bit), and `refs` of it read back through fsspec where a reference set holds it."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from conftest import BIN, run_cache  # noqa: E402
from fidelity_sweep import compare  # noqa: E402


def cache(tmp_path, source, name="out.zarr", **extra):
    store = tmp_path / name
    run_cache(tmp_path, {"data_uri": str(source), "cache_store": str(store), "deploy_mode": "series",
                         "recommend_changes": False, **extra}, check=0)
    return store


def same_values(a, b):
    """Equal, NaN equal to NaN, also in object arrays (xarray's masked text)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype.kind == "O":
        return all(x == y or (x != x and y != y) for x, y in zip(a.ravel(), b.ravel()))
    return np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")


def assert_read_as_xarray_reads(store, src):
    assert compare(store, src) == ""
    got, want = xr.open_zarr(store).load(), xr.open_dataset(src).load()
    assert set(got.variables) == set(want.variables)
    for name in want.variables:
        g, w = got[name], want[name]
        assert g.dims == w.dims and g.dtype == w.dtype, (name, g.dims, w.dims, g.dtype, w.dtype)
        assert same_values(g.values, w.values), (name, g.values, w.values)


@pytest.mark.parametrize("fmt", ["NETCDF3_CLASSIC", "NETCDF4"])
def test_argo_char_arrays_are_shaped_and_masked_as_xarray_shows_them(tmp_path, fmt):
    """Argo profiles: a char array joins its last dimension into strings only when every variable
    using that dimension is a char array ending in it (xarray's `stackable`). PRES_QC shares
    N_LEVELS with PRES and DATA_MODE ends in N_PROF: both stay |S1 with all their dimensions (we
    made them |S4 (N_PROF) and a 0-d |S3). Their _FillValue " " is masked to NaN as xarray masks it
    (we dropped it)."""
    import netCDF4
    src = tmp_path / "argo.nc"
    with netCDF4.Dataset(src, "w", format=fmt) as nc:
        nc.createDimension("N_PROF", 3)
        nc.createDimension("N_LEVELS", 4)
        nc.createDimension("STRING8", 8)
        nc.createDimension("DATE_TIME", 14)
        nc.createVariable("PRES", "f4", ("N_PROF", "N_LEVELS"), fill_value=np.float32(99999.0))[:] = \
            np.arange(12).reshape(3, 4)
        nc.createVariable("PRES_QC", "S1", ("N_PROF", "N_LEVELS"), fill_value=b" ")[:] = \
            np.array([[b"1", b"1", b"4", b" "]] * 3)
        nc.createVariable("DATA_MODE", "S1", ("N_PROF",), fill_value=b" ")[:] = np.array([b"R", b" ", b"D"])
        nc.createVariable("PLATFORM_NUMBER", "S1", ("N_PROF", "STRING8"), fill_value=b" ")[:] = \
            netCDF4.stringtochar(np.array([b"6901", b" ", b"69"], "S8"))
        nc.createVariable("REFERENCE_DATE_TIME", "S1", ("DATE_TIME",))[:] = \
            netCDF4.stringtochar(np.array([b"19500101000000"], "S14"))[0]
    want = xr.open_dataset(src)
    assert want.PRES_QC.dtype == "O" and want.DATA_MODE.dims == ("N_PROF",)  # what xarray shows
    assert want.PLATFORM_NUMBER.values[1] != want.PLATFORM_NUMBER.values[1]  # " " masked
    assert_read_as_xarray_reads(cache(tmp_path, src), src)
    out = tmp_path / "argo.json"  # char arrays in a reference set: |S n held inline, read alike
    proc = subprocess.run([str(BIN), "refs", str(src), "-o", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for kw in ({}, {"mask_and_scale": False}):
        got = xr.open_dataset("reference://", engine="zarr", backend_kwargs={
            "consolidated": False, "storage_options": {"fo": str(out)}}, **kw).load()
        want = xr.open_dataset(src, **kw).load()
        for name in want.variables:
            assert got[name].dims == want[name].dims and got[name].dtype == want[name].dtype, name
            assert same_values(got[name].values, want[name].values), name


def test_phony_dimensions_are_numbered_across_the_file_as_netcdf_c_numbers_them(tmp_path):
    """HDF5 datasets without dimension scales (h5py, HDF-EOS5) get netCDF-C's phony dimensions,
    numbered across the file: after every dimension scale, subgroups before their parent, an axis
    reusing a same-length dimension of its group (a scale too) only when both are fixed or both
    unlimited. We numbered them per group from 0 and let an unlimited axis take a fixed one."""
    import h5py
    src = tmp_path / "phony.h5"
    with h5py.File(src, "w") as f:
        f["x"] = np.arange(5.0)
        f["x"].make_scale("x")
        f["plain"] = np.arange(30, dtype="f4").reshape(5, 6)
        f["square"] = np.ones((6, 6), "i2")
        f.create_dataset("growing", data=np.arange(5.0), maxshape=(None,), chunks=(2,))
        fields = f.create_group("HDFEOS/GRIDS/g1/Data Fields")
        fields["t"] = np.arange(42, dtype="f4").reshape(6, 7)
        fields["y"] = np.arange(6.0)
        fields["y"].make_scale("y")
        f.create_group("k")["z"] = np.arange(2, dtype="i2")
    for group in (None, "HDFEOS/GRIDS/g1/Data Fields", "k"):
        want = xr.open_dataset(src, engine="netcdf4", group=group).load()
        store = cache(tmp_path, src, f"g{len(group or '')}.zarr", **({"group": group} if group else {}))
        got = xr.open_zarr(store).load()
        assert {v: got[v].dims for v in got.variables} == {v: want[v].dims for v in want.variables}
        for v in want.variables:
            assert same_values(got[v].values, want[v].values), v
    assert want.z.dims == ("phony_dim_3",)  # what netCDF-C says: after the scales x, y and t's one


def test_a_null_dataspace_is_refused_by_name(tmp_path):
    """An HDF5 dataset with a null dataspace holds no value: xarray shows a 0-d float, then fails
    reading it (netCDF-C: "HDF error"). We cached it as a 0-d 0.0; now it is refused, named,
    unless `variables:` leaves it out."""
    import h5py
    src = tmp_path / "null.h5"
    with h5py.File(src, "w") as f:
        f["x"] = np.arange(3.0)
        f.create_dataset("empty", data=h5py.Empty("f4"))
    with pytest.raises(Exception):
        xr.open_dataset(src, engine="netcdf4").load()  # it shows a 0-d float, then cannot read it
    proc = run_cache(tmp_path, {"data_uri": str(src), "cache_store": str(tmp_path / "n.zarr"),
                                "deploy_mode": "series", "recommend_changes": False})
    assert proc.returncode == 4 and "empty (an HDF5 dataset" in proc.stderr and "null dataspace" in proc.stderr, proc.stderr
    store = cache(tmp_path, src, "x.zarr", variables=["x"])
    assert np.array_equal(xr.open_zarr(store).x.values, np.arange(3.0))


def test_coordinates_attribute_is_kept_as_spelled_and_nc_properties_as_zarr_allows(tmp_path):
    """A `coordinates` attribute with a trailing blank ("lat lon ", as some writers leave it) is
    kept as the file spells it (we trimmed it). A NetCDF-3 file's global `_NCProperties` (netCDF-C
    hides it only in NetCDF-4 files) is kept in the store; xarray's zarr backend hides every global
    attribute starting with "_NC" from any Zarr store, its own to_zarr's too."""
    import netCDF4
    import zarr
    src = tmp_path / "c3.nc"
    with netCDF4.Dataset(src, "w", format="NETCDF3_CLASSIC") as nc:
        nc.setncattr("_NCProperties", "version=2,netcdf=4.9.0")
        nc.createDimension("x", 3)
        v = nc.createVariable("v", "f4", ("x",))
        v[:] = 1
        v.coordinates = "lat lon "
        nc.createVariable("lat", "f4", ("x",))[:] = 2
        nc.createVariable("lon", "f4", ("x",))[:] = 3
    store = cache(tmp_path, src)
    got = xr.open_zarr(store, decode_coords=False)
    assert got.v.attrs["coordinates"] == xr.open_dataset(src, decode_coords=False).v.attrs["coordinates"] == "lat lon "
    assert zarr.open_group(str(store), mode="r").attrs["_NCProperties"] == "version=2,netcdf=4.9.0"
    xr.open_dataset(src).to_zarr(tmp_path / "xarray.zarr")
    assert "_NCProperties" not in xr.open_zarr(tmp_path / "xarray.zarr").attrs  # xarray's own round trip


def test_szip_chunks_read_as_xarray_reads_them_and_unread_filters_are_named(tmp_path):
    """szip (HDF5 filter 4, through Debian's libaec, as HDF5 reads it): h5py's both codings, ints
    and floats of both byte orders, with and without shuffle, identical to xarray (we refused
    them). A reference set cannot name szip (numcodecs has no such codec): refused, named. LZF
    (32000; xarray here has no plugin for it) and scale-offset (6) stay refused, named."""
    import h5py
    src = tmp_path / "szip.h5"
    rng = np.random.default_rng(1)
    with h5py.File(src, "w") as f:
        f.create_dataset("nn_f4", data=rng.normal(size=(40, 50)).astype("f4"), chunks=(10, 50),
                         compression="szip", compression_opts=("nn", 16))
        f.create_dataset("ec_i2", data=rng.integers(-300, 300, (40, 50)).astype(">i2"), chunks=(8, 25),
                         compression="szip", compression_opts=("ec", 8))
        f.create_dataset("shuffled_f8", data=np.linspace(0, 1, 3000).reshape(60, 50), chunks=(7, 50),
                         shuffle=True, compression="szip")
    assert_read_as_xarray_reads(cache(tmp_path, src), src)
    proc = subprocess.run([str(BIN), "refs", str(src), "-o", str(tmp_path / "r.json")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 4 and "'szip'" in proc.stderr, proc.stderr
    for name, kw in (("lzf", {"compression": "lzf"}), ("scaleoffset", {"scaleoffset": 2})):
        other = tmp_path / f"{name}.h5"
        with h5py.File(other, "w") as f:
            f.create_dataset("v", data=np.ones((4, 5), "f4"), chunks=(2, 5), **kw)
        proc = run_cache(tmp_path, {"data_uri": str(other), "cache_store": str(tmp_path / f"{name}.zarr"),
                                    "deploy_mode": "series", "recommend_changes": False})
        assert proc.returncode == 4 and f"filter {name} (id" in proc.stderr, proc.stderr


def test_bzip2_chunks_are_read(tmp_path):
    """bzip2 (HDF5 filter 307, netCDF-C's plugin; Debian ships no such plugin, so neither xarray nor
    h5py read it here): chunks written with h5py's direct chunk write, each one bzip2 stream, read
    as the values written, and `refs` names them numcodecs' bz2 (as kerchunk does)."""
    import bz2
    import h5py
    import json
    data = np.arange(2000, dtype="<f4").reshape(40, 50)
    src = tmp_path / "bz.h5"
    with h5py.File(src, "w") as f:
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_chunk((10, 50))
        dcpl.set_filter(307, h5py.h5z.FLAG_OPTIONAL, (9,))
        d = h5py.Dataset(h5py.h5d.create(f.id, b"v", h5py.h5t.IEEE_F32LE, h5py.h5s.create_simple((40, 50)),
                                         dcpl=dcpl))
        for i in range(4):
            d.id.write_direct_chunk((10 * i, 0), bz2.compress(data[10 * i:10 * (i + 1)].tobytes(), 9))
    assert np.array_equal(xr.open_zarr(cache(tmp_path, src)).v.values, data)
    out = tmp_path / "bz.json"
    proc = subprocess.run([str(BIN), "refs", str(src), "-o", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    zarray = json.loads(json.loads(out.read_text())["refs"]["v/.zarray"])
    assert zarray["compressor"] == {"id": "bz2", "level": 9}
    got = xr.open_dataset("reference://", engine="zarr",
                          backend_kwargs={"consolidated": False, "storage_options": {"fo": str(out)}})
    assert np.array_equal(got.v.values, data)
