"""`pip install .` into a fresh venv (offline, Debian's pip/setuptools/wheel), then the original's
basic example and the installed `zarr-parallel` command run from a folder outside the repository
with no PYTHONPATH: the package finds its engine binary inside itself."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from conftest import ERA5, REPO, need_fixtures, open_kerchunk, planted_libraries  # noqa: E402

EXAMPLES = REPO / "examples" / "python"


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    env_dir = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", str(env_dir)], check=True)
    proc = subprocess.run([str(env_dir / "bin" / "pip"), "install", "--no-build-isolation", "--no-index",
                           "--no-deps", str(REPO)], capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return env_dir


def clean_env():
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ZP_WORKER_EXE", "ZP_BIN")}
    return env


def test_installed_package_runs_the_original_example_from_elsewhere(tmp_path, venv):
    need_fixtures()
    python = venv / "bin" / "python"
    where = subprocess.run([str(python), "-c", "import zarr_parallel; print(zarr_parallel.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, env=clean_env())
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout  # not the repository's
    proc = subprocess.run([str(python), str(EXAMPLES / "basic.py"), str(ERA5 / "refs.json"), str(tmp_path / "cache")],
                          capture_output=True, text=True, cwd=tmp_path, env=clean_env(), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    store = Path(proc.stdout.strip().splitlines()[-1])
    expected = open_kerchunk(ERA5 / "refs.json")[["d2m"]].sel(
        time=slice("2000-01-02", "2000-01-03"), latitude=slice(90, -2.5), longitude=slice(90, 267.5))
    assert np.array_equal(xr.open_zarr(store).d2m.values, expected.d2m.values, equal_nan=True)


def test_installed_command(tmp_path, venv):
    need_fixtures()
    exe = venv / "bin" / "zarr-parallel"
    proc = subprocess.run([str(exe), "--version"], capture_output=True, text=True, env=clean_env())
    assert proc.returncode == 0 and proc.stdout.strip(), proc.stderr
    # deploy_mode mpi execs zarr-parallel-mpi beside the engine: pip must build and ship it too
    # (it built only the module and zarr-parallel, and --version said "(no mpi)").
    if Path("/usr/bin/mpirun").exists():
        assert "no mpi" not in proc.stdout, proc.stdout
        assert list(venv.glob("lib/python3*/site-packages/zarr_parallel/bin/zarr-parallel-mpi"))
    # pip ships the build tree's engine: it, and the module, load no library from the folder they run in.
    engine = next(venv.glob("lib/python3*/site-packages/zarr_parallel/bin/zarr-parallel"))
    module = next(venv.glob("lib/python3*/site-packages/zarr_parallel/_zarr_parallel*.so"))
    planted = planted_libraries(planted_libraries(tmp_path / "planted", engine), module)
    proc = subprocess.run([str(exe), "--version"], capture_output=True, text=True, env=clean_env(), cwd=planted)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run([str(venv / "bin" / "python"), "-c", "import zarr_parallel._zarr_parallel"],
                          capture_output=True, text=True, env=clean_env(), cwd=planted)
    assert proc.returncode == 0, proc.stderr
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f'{{"data_uri": "{ERA5 / "refs.json"}", "cache_store": "{tmp_path / "c.zarr"}", '
                   '"deploy_mode": "local"}')
    proc = subprocess.run([str(exe), "cache", str(cfg)], capture_output=True, text=True, cwd=tmp_path,
                          env=clean_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr
    got = xr.open_zarr(tmp_path / "c.zarr")
    assert np.array_equal(got.d2m.values, open_kerchunk(ERA5 / "refs.json").d2m.values, equal_nan=True)


def test_installed_package_is_an_xarray_backend(tmp_path, venv):
    """The package's entry point: xr.open_dataset("config.yaml", engine="zarr_parallel") previews the cache
    the config would write, with no PYTHONPATH and nothing written."""
    need_fixtures()
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f'data_uri: "{ERA5 / "refs.json"}"\n'
                   'preprocessors: [{type: sel, latitude: [60, -30]}, {type: reverse_axis, dim: latitude}]\n')
    code = ("import sys, xarray as xr; ds = xr.open_dataset(sys.argv[1], engine='zarr_parallel'); "
            "ds.d2m.values.tofile(sys.argv[2])")
    proc = subprocess.run([str(venv / "bin" / "python"), "-c", code, str(cfg), str(tmp_path / "d2m.bin")],
                          capture_output=True, text=True, env=clean_env(), cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    want = open_kerchunk(ERA5 / "refs.json").d2m.sel(latitude=slice(60, -30)).isel(latitude=slice(None, None, -1))
    got = np.fromfile(tmp_path / "d2m.bin", want.dtype).reshape(want.shape)
    assert np.array_equal(got, want.values, equal_nan=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml", "d2m.bin"]
