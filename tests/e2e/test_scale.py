"""Memory at scale (issue 32): planning 20 years of hourly kerchunk references made by `gen`
(bench P1), and a sharded Zarr v3 cache whose work units span several large shards (bench W8).
Peak RSS is the largest process of the run, as GNU time reports it."""
import base64
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

sys.path.insert(0, str(Path(__file__).parent))
from conftest import BIN, SAMPLE_BIN  # noqa: E402

# AddressSanitizer's shadow memory and quarantine multiply RSS: there only the results are checked.
SANITIZED = BIN.exists() and b"__asan_init" in BIN.read_bytes()
from test_zarr_v3 import MODULES, zarrita  # noqa: E402

TIME = "/usr/bin/time"


def peak_rss_mb(cmd, tmp_path):
    """Runs `cmd` (checked); its stdout and the peak RSS in MB of its largest process."""
    out = tmp_path / "time.txt"
    proc = subprocess.run([TIME, "-f", "%M", "-o", str(out), *map(str, cmd)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout, int(out.read_text().split()[-1]) / 1024


def twenty_years_of_refs(path, steps=175320):
    """The bench's P1 reference set: d2m (steps, 721, 1440) in chunks (24, 91, 180), one file a
    day, every chunk reference made by one gen entry (467,520 of them)."""
    refs = {".zgroup": '{"zarr_format":2}', ".zattrs": "{}"}

    def array(name, shape, chunks, dtype, dims, fill=None, comp=None, filters=None):
        refs[f"{name}/.zarray"] = json.dumps({"chunks": chunks, "compressor": comp, "dtype": dtype,
                                              "fill_value": fill, "filters": filters, "order": "C",
                                              "shape": shape, "zarr_format": 2})
        refs[f"{name}/.zattrs"] = json.dumps({"_ARRAY_DIMENSIONS": dims})

    array("time", [steps], [steps], "<i4", ["time"])
    refs["time/0"] = "base64:" + base64.b64encode((876576 + np.arange(steps, dtype="<i4")).tobytes()).decode()
    array("latitude", [721], [721], "<f4", ["latitude"])
    refs["latitude/0"] = "base64:" + base64.b64encode(np.linspace(90, -90, 721).astype("<f4").tobytes()).decode()
    array("longitude", [1440], [1440], "<f4", ["longitude"])
    refs["longitude/0"] = "base64:" + base64.b64encode((np.arange(1440) * 0.25).astype("<f4").tobytes()).decode()
    array("d2m", [steps, 721, 1440], [24, 91, 180], "<i2", ["time", "latitude", "longitude"], fill=-32767,
          comp={"id": "zlib", "level": 1})
    gen = [{"key": "d2m/{{t}}.{{y}}.{{x}}", "url": "/data/era5_{{t}}.nc", "offset": "{{1000 + (y*8+x)*300000}}",
            "length": "{{250000 + t}}", "dimensions": {"t": {"stop": steps // 24}, "y": {"stop": 8},
                                                       "x": {"stop": 8}}}]
    path.write_text(json.dumps({"version": 1, "refs": refs, "gen": gen}))


def test_plan_of_twenty_years_of_generated_references_stays_small(tmp_path):
    """Bench P1 as a test: the plan names every chunk where gen put it, in under 120 MB (130-133 MB
    before the columnar generated references: a map node and a path string a reference; 112 MB now,
    most of it the manifest and its copy in the plan)."""
    twenty_years_of_refs(tmp_path / "refs.json")
    cfg = tmp_path / "p1.yaml"
    cfg.write_text(json.dumps({"data_uri": str(tmp_path / "refs.json"), "variables": ["d2m"],
                               "chunks": {"time": 24, "latitude": 91, "longitude": 180},
                               "cache_store": str(tmp_path / "p1.zarr")}))
    out, rss = peak_rss_mb([BIN, "plan", cfg, "--json"], tmp_path)
    plan = json.loads(out)
    assert len(plan["files"]) == 7305 and plan["files"][1234] == "/data/era5_1234.nc"
    assert plan["summary"]["source_chunks"] == 467520
    # Read bytes: the lengths gen gave, each chunk once (sum over t of 64 * (250000 + t)).
    days = np.arange(7305, dtype=np.int64)
    assert plan["summary"]["read_bytes"] == int((64 * (250000 + days)).sum())
    assert SANITIZED or rss < 120, f"peak RSS {rss:.0f} MB"


@pytest.mark.skipif(not (MODULES / "zarrita" / "package.json").exists(),
                    reason="zarrita not installed (scripts/setup.sh)")
def test_sharded_cache_holds_a_piece_of_a_unit_not_its_shards(tmp_path):
    """Shards (48, 360, 720) of inner chunks (48, 45, 90) from source chunks of (24, 91, 180): a
    work unit is the three shards along latitude (they share source chunks), 53 MB decoded. Its
    inner chunks are streamed into their shards a piece at a time (13 MB), not held whole (75 MB
    peak before, 37 MB now); zarrita
    reads the shards equal to the source."""
    src = tmp_path / "src"
    subprocess.run([str(SAMPLE_BIN), "--out", str(src), "--files", "2", "--lat", "721", "--lon", "1440",
                    "--chunks", "24", "91", "180", "--deflate", "1", "--no-missing", "--no-t2m"], check=True,
                   capture_output=True)
    store = tmp_path / "w8.zarr"
    cfg = tmp_path / "w8.yaml"
    cfg.write_text(json.dumps({"data_uri": str(src / "*.nc"), "variables": ["d2m"], "encoding": "source",
                               "zarr_format": 3, "chunks": {"time": 48, "latitude": 45, "longitude": 90},
                               "shards": {"time": 48, "latitude": 360, "longitude": 720},
                               "cache_store": str(store), "deploy_mode": "local", "simultaneous_worker_limit": 1,
                               "threads_per_worker": 1, "recommend_changes": False}))
    _, rss = peak_rss_mb([BIN, "cache", cfg], tmp_path)
    got, _ = zarrita(store, ["d2m"], tmp_path)
    want = xr.open_mfdataset(sorted(src.glob("*.nc")), combine="nested", concat_dim="time",
                             mask_and_scale=False).d2m.values
    assert np.array_equal(got["d2m"], want)
    assert len([p for p in (store / "d2m" / "c").rglob("*") if p.is_file()]) == 6
    assert SANITIZED or rss < 55, f"peak RSS {rss:.0f} MB"
