"""Kill trials: a multi-job local cache with a worker SIGKILLed after a random number of chunk
writes (other threads may be mid-write), and a coordinator killed the same way then resumed. Every
final store must be byte-identical to an uninterrupted run. ZP_KILL_TRIALS sets the worker
trials (coordinator trials: half as many); CI runs 4, the README reports a longer run."""
import os
import random

import pytest

from conftest import ERA5, need_fixtures, run_cache, store_files

TRIALS = int(os.environ.get("ZP_KILL_TRIALS", "4"))


def config(store, **extra):
    cfg = {"data_uri": str(ERA5 / "refs.json"), "chunks": {"time": 24, "latitude": 19, "longitude": 36},
           "cache_store": str(store), "num_jobs": 8, "simultaneous_worker_limit": 2, "recommend_changes": False}
    cfg.update(extra)
    return cfg


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    need_fixtures()
    folder = tmp_path_factory.mktemp("clean")
    run_cache(folder, config(folder / "clean.zarr", deploy_mode="series"), check=0)
    return store_files(folder / "clean.zarr")


@pytest.mark.parametrize("trial", range(TRIALS))
def test_worker_killed_at_random(tmp_path, clean, trial):
    after = random.Random(trial).randint(1, 12)
    flag = tmp_path / "fired"
    store = tmp_path / "w.zarr"
    env = {"ZP_FAULT_KILL_ONCE": str(flag), "ZP_FAULT_AFTER_CHUNKS": str(after)}
    proc = run_cache(tmp_path, config(store), env=env, check=0)
    assert flag.exists(), f"no worker reached {after} chunk writes"
    assert "running it again" in proc.stderr
    assert store_files(store) == clean


@pytest.mark.parametrize("trial", range(max(1, TRIALS // 2)))
def test_coordinator_killed_at_random_then_resumed(tmp_path, clean, trial):
    after = random.Random(1000 + trial).randint(1, 60)
    flag = tmp_path / "fired"
    store = tmp_path / "c.zarr"
    env = {"ZP_FAULT_KILL_ONCE": str(flag), "ZP_FAULT_AFTER_CHUNKS": str(after)}
    proc = run_cache(tmp_path, config(store, deploy_mode="series"), env=env)
    assert proc.returncode == -9 and flag.exists()
    assert not (store / ".zarr-parallel" / "complete.json").exists()
    run_cache(tmp_path, config(store, deploy_mode="series", resume=True), check=0)
    assert store_files(store) == clean
