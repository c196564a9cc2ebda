"""Write faults on real file systems the test mounts (CI runs as root): a full disk and a
read-only store are clear errors, leave no half-written chunk, never mark the store complete, and
the cache resumes once the disk has room."""
import os
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import ERA5, need_fixtures, run_cache, store_files


@contextmanager
def tmpfs(path, options):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    path.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)])


def config(store, **extra):
    cfg = {"data_uri": str(ERA5 / "refs.json"), "chunks": {"time": 24, "latitude": 19, "longitude": 36},
           "cache_store": str(store), "compressor": None, "recommend_changes": False, "num_jobs": 4}
    cfg.update(extra)
    return cfg


def temporaries(store):
    return [p for p in Path(store).rglob("*") if ".zptmp." in p.name]


@pytest.mark.parametrize("mode,code", [("series", 5), ("local", 6)])
def test_disk_full_then_resume(tmp_path, mode, code):
    need_fixtures()
    clean = tmp_path / "clean.zarr"
    run_cache(tmp_path, config(clean, deploy_mode="series"), check=0)
    with tmpfs(tmp_path / "small", "size=1m") as mnt:  # the cache needs about 6 MB
        store = mnt / "full.zarr"
        proc = run_cache(tmp_path, config(store, deploy_mode=mode))
        assert proc.returncode == code, proc.stderr
        assert "No space left on device" in proc.stderr
        assert temporaries(store) == []
        assert not (store / ".zarr-parallel" / "complete.json").exists() and not (store / ".zmetadata").exists()
        subprocess.run(["mount", "-o", "remount,size=64m", str(mnt)], check=True)
        run_cache(tmp_path, config(store, deploy_mode=mode, resume=True), check=0)
        assert store_files(store) == store_files(clean)


def test_read_only_store_location(tmp_path):
    need_fixtures()
    with tmpfs(tmp_path / "ro", "ro,size=1m") as mnt:
        proc = run_cache(tmp_path, config(mnt / "x.zarr", deploy_mode="series"))
        assert proc.returncode == 5, proc.stderr
        assert "Read-only file system" in proc.stderr and str(mnt / "x.zarr") in proc.stderr
