"""The Python module: the original's API and example scripts, dask_distributed, errors."""
import builtins
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
from conftest import (BIN, ERA5, SAMPLE_BIN, need_fixtures, open_kerchunk, run_cache, store_files,  # noqa: E402
                      tile_like_the_original)

from zarr_parallel import ZarrParallelAssembler  # noqa: E402
from zarr_parallel.assembler import ZarrParallelAssembler as FromAssembler  # noqa: E402

EXAMPLES = REPO / "examples" / "python"
SUBSET = {"type": "subset", "time": ("2000-01-02 00:00:00", "2000-01-03 23:00:00"),
          "latitude": (90, -2.5), "longitude": (90, 267.5)}
CHUNKS = {"time": 24, "latitude": 19, "longitude": 36}


def run_example(name, tmp_path, env=None):
    proc = subprocess.run([sys.executable, EXAMPLES / name, str(ERA5 / "refs.json"), str(tmp_path / "cache")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return Path(proc.stdout.strip().splitlines()[-1])


def cli_store(tmp_path, **extra):
    """The same cache made by the CLI in local mode: the reference stores are compared with."""
    store = tmp_path / "cli.zarr"
    cfg = {"data_uri": str(ERA5 / "refs.json"), "engine": "kerchunk", "preprocessors": [dict(SUBSET)],
           "chunks": CHUNKS, "variables": {"d2m": {}}, "cache_label": "_v1", "cache_store": str(store),
           "log_level": 0}
    cfg["preprocessors"][0] = {k: list(v) if isinstance(v, tuple) else v for k, v in SUBSET.items()}
    cfg.update(extra)
    run_cache(tmp_path, cfg, check=0)
    return store


def test_both_imports_are_the_same_class():
    assert ZarrParallelAssembler is FromAssembler


def test_basic_example_runs_unchanged_on_dask_distributed(tmp_path):
    need_fixtures()
    store = run_example("basic.py", tmp_path)
    assert store.name == "refs_v1.zarr"
    assert store_files(store) == store_files(cli_store(tmp_path))
    expected = open_kerchunk(ERA5 / "refs.json")[["d2m"]].sel(
        time=slice("2000-01-02", "2000-01-03"), latitude=slice(90, -2.5), longitude=slice(90, 267.5))
    got = xr.open_zarr(store)
    assert np.array_equal(got.d2m.values, expected.d2m.values, equal_nan=True)


def test_series_example(tmp_path):
    need_fixtures()
    store = run_example("series.py", tmp_path)
    got = xr.open_zarr(store)
    assert set(got.data_vars) == {"d2m", "air_temperature"} and got.attrs["project"] == "FRAME-FM"
    expected = open_kerchunk(ERA5 / "refs.json").sel(time=slice("2000-01-02", "2000-01-03"))
    assert np.array_equal(got.air_temperature.values, expected.t2m.values, equal_nan=True)


def test_killed_dask_worker_is_retried(tmp_path):
    need_fixtures()
    flag = tmp_path / "fault-fired"
    env = dict(os.environ, ZP_FAULT_KILL_ONCE=str(flag))
    store = run_example("basic.py", tmp_path, env=env)
    assert flag.exists(), "the fault was not injected"
    assert store_files(store) == store_files(cli_store(tmp_path))


def test_plan_inspect_open_and_cache_hit(tmp_path):
    need_fixtures()
    zp = ZarrParallelAssembler(str(ERA5 / "refs.json"), preprocessors=[SUBSET], chunks=CHUNKS,
                               variables=["d2m"])
    plan = zp.plan(cache_store=str(tmp_path / "p.zarr"))
    assert plan["summary"]["read_amplification"] == 1.0 and plan["recommendations"] == []
    info = zp.inspect()
    assert {v["name"] for v in info["variables"]} >= {"d2m", "t2m"}
    with pytest.raises(ValueError):
        zp.open()
    path = zp.cache(cache_store=str(tmp_path / "p.zarr"), deploy_mode="series")
    assert path == zp.cache_store and zp.open().d2m.shape == (48, 38, 72)
    mtime = (Path(path) / "d2m" / "0.0.0").stat().st_mtime_ns
    zp.cache(cache_store=str(tmp_path / "p.zarr"), deploy_mode="series")
    assert (Path(path) / "d2m" / "0.0.0").stat().st_mtime_ns == mtime


def test_recommendations_ask_through_input(tmp_path, monkeypatch):
    need_fixtures()
    # 46 MB makes jobs re-read source chunks: a recommendation that saves something (only those stop).
    zp = ZarrParallelAssembler(str(ERA5 / "refs.json"), variables={"t2m": {}},
                               chunks={"time": 96, "latitude": 73, "longitude": 10})
    store = tmp_path / "r.zarr"
    with pytest.raises(ValueError, match="recommendations"):  # not interactive: stop, as exit code 3
        zp.cache(cache_store=str(store), deploy_mode="series", memory_limit="46MB")
    assert not store.exists()

    class Tty:
        def isatty(self):
            return True
    monkeypatch.setattr(sys, "stdin", Tty())
    answers = iter(["n", "y"])
    monkeypatch.setattr(builtins, "input", lambda prompt: next(answers))
    with pytest.raises(ValueError, match="recommendations"):
        zp.cache(cache_store=str(store), deploy_mode="series", memory_limit="46MB")
    assert not store.exists()
    zp.cache(cache_store=str(store), deploy_mode="series", memory_limit="46MB")
    assert xr.open_zarr(store).t2m.shape == (96, 73, 144)


def test_plan_picture_for_notebooks(tmp_path):
    need_fixtures()
    zp = ZarrParallelAssembler(str(ERA5 / "refs.json"), preprocessors=[dict(SUBSET)], chunks=CHUNKS,
                               variables={"d2m": {}})
    pic = zp.plan_picture(cache_store=str(tmp_path / "p.zarr"))
    assert pic.lstrip().startswith("<!-- zarr-parallel plan picture -->\n<svg") and pic._repr_svg_() == pic
    assert "read amplification" in pic
    assert not (tmp_path / "p.zarr").exists()


def test_without_a_terminal_the_question_is_not_asked(tmp_path):
    """No terminal on stdin: a "y" already piped in answers (`yes | python script.py`, as with the
    original); a pipe nobody writes to, /dev/null or stdin closed: no question and no endless wait,
    ValueError naming the keyword that answers it, as the CLI stops with exit 3. Before, input()
    waited for ever on a pipe nobody wrote."""
    need_fixtures()
    script = tmp_path / "ask.py"
    script.write_text(
        "import sys\nfrom zarr_parallel import ZarrParallelAssembler\n"
        f"zp = ZarrParallelAssembler({str(ERA5 / 'refs.json')!r}, variables={{'t2m': {{}}}}, "
        "chunks={'time': 96, 'latitude': 73, 'longitude': 10})\n"
        "try:\n    zp.cache(cache_store=sys.argv[1], deploy_mode='series', memory_limit='46MB')\n"
        "except ValueError as e:\n"
        "    print('ValueError:', e)\n"
        "    sys.exit(3)\n")
    for name, stdin in (("y", subprocess.PIPE), ("open", subprocess.PIPE), ("null", subprocess.DEVNULL),
                        ("closed", None)):
        store = tmp_path / f"s_{name}.zarr"
        out_path, err_path = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
        with open(out_path, "w") as out_file, open(err_path, "w") as err_file:
            proc = subprocess.Popen([sys.executable, script, str(store)], stdin=stdin, stdout=out_file,
                                    stderr=err_file, text=True,
                                    preexec_fn=(lambda: os.close(0)) if name == "closed" else None)
            if name == "y":
                proc.stdin.write("y\n")
                proc.stdin.flush()
            try:
                proc.wait(timeout=90)  # the pipes stay open meanwhile: nobody writes more
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            finally:
                if proc.stdin:
                    proc.stdin.close()
        out, err = out_path.read_text(), err_path.read_text()
        if name == "y":  # an answer piped in counts, as input() took it in the original
            assert proc.returncode == 0, (name, proc.returncode, out, err[-2000:])
            assert "[read from stdin]" in out and store.exists(), (name, out)
            continue
        assert proc.returncode == 3, (name, proc.returncode, out, err[-2000:])
        assert "Continue without recommendations?" not in out, (name, out)
        assert "recommend_changes=False" in out and "no terminal" in out, (name, out)
        assert not store.exists()


def test_errors_are_the_documented_exceptions(tmp_path):
    need_fixtures()
    refs = str(ERA5 / "refs.json")
    with pytest.raises(ValueError):
        ZarrParallelAssembler(refs, preprocessors="sel")
    with pytest.raises(ValueError):
        ZarrParallelAssembler(refs).cache(cache_store=str(tmp_path / "x.zarr"), deploy_mode="cloud")
    with pytest.raises(ValueError, match="unknown preprocessor 'zoom'"):
        ZarrParallelAssembler(refs, preprocessors=[{"type": "zoom"}]).cache(cache_store=str(tmp_path / "x.zarr"))
    with pytest.raises(ValueError, match="nope"):
        ZarrParallelAssembler(refs, variables={"nope": {}}).cache(cache_store=str(tmp_path / "x.zarr"))
    with pytest.raises(FileNotFoundError):
        ZarrParallelAssembler(str(tmp_path / "missing.json")).cache(cache_store=str(tmp_path / "x.zarr"))
    with pytest.raises(FileNotFoundError):
        ZarrParallelAssembler(str(tmp_path / "none_*.nc"), engine="netcdf").cache(cache_store=str(tmp_path / "x.zarr"))
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError):
        ZarrParallelAssembler(refs, variables=["d2m"]).cache(cache_store=str(blocker), deploy_mode="series")
    assert not (tmp_path / "x.zarr").exists()


def test_default_engine_reads_netcdf_and_messages_survive_non_utf8_bytes(tmp_path):
    """The original's default engine='kerchunk' given a .nc path reads it (as auto does); an error
    about a path that is not UTF-8 still reaches Python with its text (once an empty OSError())."""
    src = tmp_path / "one.nc"
    xr.Dataset({"v": ("x", np.arange(4.0))}, coords={"x": np.arange(4)}).to_netcdf(src)
    store = tmp_path / "one.zarr"
    ZarrParallelAssembler(str(src)).cache(cache_store=str(store), deploy_mode="series")
    assert np.array_equal(xr.open_zarr(store).v.values, np.arange(4.0))
    odd = os.fsdecode(bytes(tmp_path) + b"/caf\xe9_missing.json")
    with pytest.raises(ValueError) as err:
        ZarrParallelAssembler(odd).cache(cache_store=str(tmp_path / "x.zarr"), deploy_mode="series")
    assert "unicode" in str(err.value)  # such paths are not supported yet, and it says so


def test_datetimes_slices_and_numpy_values_are_accepted(tmp_path):
    """The original's users write preprocessors with datetime, numpy.datetime64, pandas.Timestamp,
    slices and numpy numbers; each gives the same cache (and config hash) as plain values."""
    import datetime

    import pandas as pd
    need_fixtures()
    refs = str(ERA5 / "refs.json")
    plain = {"type": "sel", "time": ["2000-01-02 00:00:00", "2000-01-03 23:00:00"]}
    variants = [
        {"type": "sel", "time": (datetime.datetime(2000, 1, 2), datetime.datetime(2000, 1, 3, 23))},
        {"type": "sel", "time": (np.datetime64("2000-01-02T00:00:00"), np.datetime64("2000-01-03T23:00:00"))},
        {"type": "sel", "time": slice(pd.Timestamp("2000-01-02"), pd.Timestamp("2000-01-03 23:00"))},
    ]
    chunks = {"time": np.int64(24), "latitude": np.int32(19), "longitude": 36}
    base = ZarrParallelAssembler(refs, preprocessors=[plain], chunks={"time": 24, "latitude": 19, "longitude": 36},
                                 variables=["d2m"])
    want = base.plan(cache_store=str(tmp_path / "p.zarr"))["config_hash"]
    for pre in variants:
        zp = ZarrParallelAssembler(refs, preprocessors=[pre], chunks=chunks, variables=["d2m"])
        assert zp.plan(cache_store=str(tmp_path / "p.zarr"))["config_hash"] == want, pre


def test_original_tiled_script_runs_with_only_its_source_and_store_changed(tmp_path):
    """The original's tiled.py: reverse_axis, sel, tiled (padding far beyond the fixture), on
    dask_distributed with num_jobs=4 and resume=True; the result is xarray's own tiling."""
    need_fixtures()
    text = (REPO.parent / "shared" / "reference" / "original-examples" / "tiled.py").read_text()
    url = "https://gws-access.jasmin.ac.uk/public/eds_ai/era5_repack/aggregations/data/ecmwf-era5X_oper_an_sfc_2000_2020_2d_repack.kr1.0.json"
    store = tmp_path / "v0.4.0.zarr"
    assert url in text and "/gws/ssde/j25b/eds_ai/frame-fm/data/zarr_cache/v0.4.0.zarr" in text
    script = tmp_path / "tiled.py"
    script.write_text(text.replace(url, str(ERA5 / "refs.json"))
                      .replace("/gws/ssde/j25b/eds_ai/frame-fm/data/zarr_cache/v0.4.0.zarr", str(store)))
    proc = subprocess.run([sys.executable, script], capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    src = open_kerchunk(ERA5 / "refs.json").isel(latitude=slice(None, None, -1)).sel(
        time=slice("2000-01-01 00:00:00", "2001-06-10 23:00:00"), latitude=slice(60, 67.8),
        longitude=slice(10, 137.8))
    want = tile_like_the_original(src, {"time": 120, "latitude": 200, "longitude": 400})
    got = xr.open_zarr(store).load()
    assert got.attrs["preprocessor_hash"] == "gajgedgsndasdgasdg"
    assert got.attrs["tiler_tile_sizes"] == {"time": 120, "latitude": 200, "longitude": 400}
    for name in want.variables:
        assert got[name].dims == want[name].dims, (name, got[name].dims, want[name].dims)
        assert np.array_equal(got[name].values, want[name].values, equal_nan=True), name


def test_refs_from_python_reads_as_the_files(tmp_path):
    need_fixtures()
    import json

    import zarr_parallel
    out = tmp_path / "era5.json"
    summary = zarr_parallel.refs(str(ERA5 / "era5_small_*.nc"), out)
    assert summary["files"] == 4 and summary["variables"] == 5, summary
    got = xr.open_dataset("reference://", engine="zarr",
                          backend_kwargs={"consolidated": False,
                                          "storage_options": {"fo": json.loads(out.read_text())}}).load()
    files = sorted(ERA5.glob("era5_small_*.nc"))
    expected = xr.open_mfdataset(files, combine="nested", concat_dim="time", data_vars="minimal",
                                 coords="minimal", compat="override").load()
    for name in ("d2m", "t2m", "time"):
        assert np.array_equal(got[name].values, expected[name].values, equal_nan=name != "time"), name
    with pytest.raises(OSError):  # a file that is not ours is never replaced
        (tmp_path / "mine.json").write_text("{}")
        zarr_parallel.refs(str(ERA5 / "era5_small_20000101.nc"), tmp_path / "mine.json")


ORIGINAL_URL = ("https://gws-access.jasmin.ac.uk/public/eds_ai/era5_repack/aggregations/data/"
                "ecmwf-era5X_oper_an_sfc_2000_2020_2d_repack.kr1.0.json")


def original_with_local_stand_ins(name, tmp_path, url, store=None):
    """The original's script with only its data URI (and cache path, where it names one) swapped."""
    text = (REPO.parent / "shared" / "reference" / "original-examples" / name).read_text()
    assert ORIGINAL_URL in text
    text = text.replace(ORIGINAL_URL, url)
    if store is not None:
        original_store = "/gws/ssde/j25b/eds_ai/frame-fm/data/zarr_cache/v0.4.0.zarr"
        assert original_store in text
        text = text.replace(original_store, str(store))
    script = tmp_path / name
    script.write_text(text)
    return script


def test_original_basic_and_series_scripts_run_against_a_local_http_server(tmp_path):
    """basic.py (dask_distributed, 4 workers, num_jobs=4) and series.py (its own asserts) unchanged but
    for the URI: the fixture's reference set and NetCDF files served by nginx on loopback."""
    import shutil as sh
    need_fixtures()
    if not (sh.which("nginx") or Path("/usr/sbin/nginx").exists()):
        pytest.fail("nginx is missing: scripts/setup.sh --tests installs nginx-light")
    from servers import Nginx
    root = tmp_path / "www"
    sh.copytree(ERA5, root / "era5")
    expected = open_kerchunk(ERA5 / "refs.json")
    with Nginx(root, tmp_path / "nginx") as server:
        url = f"{server.url}/era5/refs.json"
        store = tmp_path / "basic.zarr"
        script = original_with_local_stand_ins("basic.py", tmp_path, url, store)
        # The selection cuts source chunks: the script asks through input(), as the original does; a
        # user answers y.
        proc = subprocess.run([sys.executable, script], capture_output=True, text=True, cwd=tmp_path, timeout=600,
                              input="y\n")
        assert proc.returncode == 0, proc.stderr[-3000:]
        got = xr.open_zarr(store).load()
        want = expected.sel(time=slice("2000-01-01", "2000-02-28"), latitude=slice(60, -30), longitude=slice(40, 100))
        for name in ("d2m", "t2m"):
            assert np.array_equal(got[name].values, want[name].values, equal_nan=True), name
        # series.py asserts a second chunk along time (d2m/1.0.0) under chunks='auto' (the source
        # chunks): its stand-in is a week at 0.25° (zp-make-sample), as a reference set made by
        # `zarr-parallel refs`, served by the same nginx.
        week = root / "week"
        subprocess.run([str(SAMPLE_BIN), "--out", str(week), "--files", "7", "--lat", "721", "--lon", "1440",
                        "--chunks", "24", "91", "180", "--deflate", "1"], check=True, capture_output=True, timeout=300)
        subprocess.run([str(BIN), "refs", str(week / "*.nc"), "-o", str(week / "refs.json"), "--relative"],
                       check=True, capture_output=True, timeout=300)
        script = original_with_local_stand_ins("series.py", tmp_path, f"{server.url}/week/refs.json")
        proc = subprocess.run([sys.executable, script], capture_output=True, text=True, cwd=tmp_path, timeout=600,
                              input="y\n")
        assert proc.returncode == 0, proc.stderr[-3000:]
    got = xr.open_zarr(tmp_path / "zarr_cache" / "test_series.zarr").load()
    assert got.attrs["series_test"] == "abc123"
    files = sorted(week.glob("*.nc"))
    week_ds = xr.open_mfdataset(files, combine="nested", concat_dim="time", data_vars="minimal", coords="minimal",
                                compat="override")
    want = week_ds.sel(time=slice("2000-01-01", "2000-01-07"), latitude=slice(60, -30), longitude=slice(40, 100))
    assert np.array_equal(got["d2m"].values, want["d2m"].values, equal_nan=True)


def test_cache_returns_what_it_did_and_a_grown_glob_is_no_hit(tmp_path):
    """Issue 28: the return value is the store's path and says hit / new / rebuild and why; a file
    added to the glob (made by netCDF4-python) is a rebuild, never a hit."""
    import netCDF4
    src = tmp_path / "src"
    src.mkdir()

    def day(i):
        with netCDF4.Dataset(src / f"day{i:02d}.nc", "w") as nc:
            nc.createDimension("time", None)
            nc.createDimension("x", 3)
            t = nc.createVariable("time", "f8", ("time",))
            t.units = "hours since 2000-01-01"
            v = nc.createVariable("v", "f4", ("time", "x"))
            t[:] = np.arange(24 * i, 24 * i + 24)
            v[:] = np.arange(72, dtype="f4").reshape(24, 3) + 100 * i

    for i in range(3):
        day(i)
    zp = ZarrParallelAssembler(str(src / "*.nc"), engine="netcdf", chunks={"time": 24, "x": 3})
    store = str(tmp_path / "days.zarr")
    first = zp.cache(cache_store=store, deploy_mode="series", recommend_changes=False)
    assert first == zp.cache_store and first.decision == "new", (first.decision, first.reason)
    again = zp.cache(cache_store=store, deploy_mode="series", recommend_changes=False)
    assert again.decision == "hit" and "unchanged" in again.reason
    day(3)
    grown = zp.cache(cache_store=store, deploy_mode="series", recommend_changes=False, on_source_change="rebuild")
    assert grown.decision == "rebuild" and "day03.nc" in grown.reason, grown.reason
    got = xr.open_zarr(store)
    want = xr.open_mfdataset(sorted(str(p) for p in src.glob("*.nc")), combine="nested", concat_dim="time")
    assert got.sizes["time"] == 96 and np.array_equal(got.v.values, want.v.values)


def test_a_failed_dask_task_prints_no_credentials():
    """dask logs a failed task's arguments ("Compute Failed ... args: (...)", worker.py's
    convert_args_to_str, which takes repr() of each) in the worker's log and on the client's
    terminal. The credentials handed to a job must not be in that text, and must still reach the
    engine whole after dask's own serialisation. Before, the secrets JSON was a plain str argument
    and printed as it is."""
    from distributed.protocol import pickle as dask_pickle
    from distributed.worker import convert_args_to_str
    from zarr_parallel.assembler import _Withheld
    secret = '{"headers": {"X-Api-Key": "SECRET-4711"}}'
    args = ("plan.json", 3, 1, _Withheld(secret), "ab" * 32, "")
    for shown in (convert_args_to_str(args), convert_args_to_str(args, max_len=10_000), str(args[3]),
                  f"{args[3]}"):
        assert "SECRET-4711" not in shown, shown
    back = dask_pickle.loads(dask_pickle.dumps(args))
    assert str.__str__(back[3]) == secret and isinstance(back[3], _Withheld)
