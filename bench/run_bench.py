#!/usr/bin/python3
"""zarr-parallel benchmark: workloads W0-W3 and P1 (see bench/README.md), our engine against
xarray + dask (threads and dask.distributed), gdalmdimtranslate and nccopy, and the hardware floor
measured by zp-bench-floor. Every output is checked equal to ours before its time counts.

    /usr/bin/python3 bench/run_bench.py [--files 10] [--runs 5] [--workloads W0,W1,W2,W3,P1] [--no-baselines]

Every run records its wall and CPU time (user + sys, children included), the load average before and
after, and the cores other processes used meanwhile; runs on a busy machine are flagged.
"""
import argparse
import base64
import glob
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BIN = REPO / "build" / "bin"
HERE = Path(__file__).resolve().parent
SOURCE_CHUNKS = (24, 91, 180)

WORKLOADS = {
    "W0": dict(desc="single file -> Zarr, chunks (24, 181, 360)", files="daily1", chunks=(24, 181, 360)),
    "W1": dict(desc="subset 2000-01-02T00..01-09T23, lat 60..-30, lon 40..100, chunks (24, 91, 180)",
               files="daily", chunks=(24, 91, 180),
               sel={"time": ["2000-01-02T00:00", "2000-01-09T23:00"], "latitude": [60, -30], "longitude": [40, 100]}),
    "W2": dict(desc="all files rechunked for time series, chunks (240, 45, 90)", files="daily", chunks=(240, 45, 90)),
    "W3": dict(desc="240 hourly files (1 step each) -> chunks (24, 91, 180)", files="hourly", chunks=(24, 91, 180)),
    "W8": dict(desc="W2 written as Zarr v3, shards (240, 360, 720) of chunks (240, 45, 90)", files="daily",
               chunks=(240, 45, 90), extra={"zarr_format": 3, "shards": {"time": 240, "latitude": 360,
                                                                          "longitude": 720}}),
    "W5": dict(desc="10 files, Europe box, tiled {time: 24, latitude: 64, longitude: 64}", files="daily", chunks=None,
               pre=[{"type": "reverse_axis", "dim": "latitude"},
                    {"type": "sel", "latitude": [35, 70], "longitude": [0, 40]},
                    {"type": "tiled", "time": 24, "latitude": 64, "longitude": 64}],
               transform="tiled"),
    "W6": dict(desc="one day, roll auto, box across the seam lon -40..60, lat 70..30, chunks (24, 91, 180)",
               files="daily1", chunks=(24, 91, 180),
               pre=[{"type": "roll", "dim": "longitude", "shifts": "auto"},
                    {"type": "sel", "longitude": [-40, 60], "latitude": [70, 30]}],
               transform="roll"),
}


# A run is flagged busy when other processes used more than this many cores on average during it
# (from /proc/stat, less the run's own CPU time); --busy-cores sets it.
BUSY_CORES = 0.3


def machine_cpu_seconds():
    """CPU seconds all cores have spent busy since boot (/proc/stat: all but idle and iowait)."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:]]
    busy = sum(ticks[:8]) - ticks[3] - ticks[4]  # user nice system idle iowait irq softirq steal
    return busy / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


class Run:
    """One timed command: wall seconds, peak RSS (kB) of its largest process, its CPU seconds (user +
    sys of it and every process it waited for), the load average before and after, the cores other
    processes kept busy meanwhile, and whether that makes it a run on a busy machine."""

    def __init__(self, wall, rss_kb, cpu, load_before, load_after, others):
        self.wall, self.rss_kb, self.cpu = wall, rss_kb, cpu
        self.load_before, self.load_after, self.others = load_before, load_after, others
        self.busy = others > BUSY_CORES

    def record(self):
        return {"wall": round(self.wall, 4), "cpu": round(self.cpu, 4), "load_before": self.load_before,
                "load_after": self.load_after, "other_cores": round(self.others, 2), "busy": self.busy}


def timed(cmd, env=None):
    """Runs `cmd` once (it must succeed) and measures it: a Run."""
    out = Path("/tmp/zp_bench_time.txt")
    load_before = round(os.getloadavg()[0], 2)
    cpu0, machine0 = children_cpu_seconds(), machine_cpu_seconds()
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", str(out), *cmd], capture_output=True, text=True,
                          env=env)
    wall = time.perf_counter() - t0
    cpu, machine = children_cpu_seconds() - cpu0, machine_cpu_seconds() - machine0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed:\n{proc.stderr[-2000:]}")
    others = max(0.0, machine - cpu) / wall if wall > 0 else 0.0
    return Run(wall, int(out.read_text().split()[-1]), cpu, load_before, round(os.getloadavg()[0], 2), others)


def summary(runs):
    """Medians of a series of runs (wall and CPU), each run's record, and how many were on a busy
    machine; `median_quiet` is the median of the others when there are any."""
    walls = [r.wall for r in runs]
    quiet = [r.wall for r in runs if not r.busy]
    out = dict(median=statistics.median(walls), times=walls, cpu_median=statistics.median(r.cpu for r in runs),
               runs=[r.record() for r in runs], busy_runs=sum(r.busy for r in runs))
    if quiet and len(quiet) < len(runs):
        out["median_quiet"] = statistics.median(quiet)
    return out


def make_data(data, nfiles):
    daily, hourly = data / "daily", data / "hourly"
    if len(glob.glob(str(daily / "*.nc"))) != nfiles:
        shutil.rmtree(daily, ignore_errors=True)
        subprocess.run([BIN / "zp-make-sample", "--out", daily, "--files", str(nfiles), "--lat", "721", "--lon", "1440",
                        "--chunks", *map(str, SOURCE_CHUNKS), "--deflate", "1", "--no-missing", "--no-t2m"],
                       check=True, capture_output=True)
    if len(glob.glob(str(hourly / "*.nc"))) != 240:
        shutil.rmtree(hourly, ignore_errors=True)
        subprocess.run([BIN / "zp-make-sample", "--out", hourly, "--files", "240", "--steps", "1", "--lat", "721",
                        "--lon", "1440", "--chunks", "1", "91", "180", "--deflate", "1", "--no-missing", "--no-t2m"],
                       check=True, capture_output=True)
    return {"daily1": sorted(glob.glob(str(daily / "*.nc")))[:1], "daily": sorted(glob.glob(str(daily / "*.nc"))),
            "hourly": sorted(glob.glob(str(hourly / "*.nc")))}


def our_config(w, files, out, workers=2, threads=0):
    cfg = {"data_uri": files[0] if len(files) == 1 else str(Path(files[0]).parent / "*.nc"), "engine": "netcdf",
           "variables": ["d2m"], "chunks": dict(zip(("time", "latitude", "longitude"), w["chunks"] or ())),
           "cache_store": str(out), "encoding": "source", "recommend_changes": False, "deploy_mode": "local",
           "simultaneous_worker_limit": workers, "generate_stats": True, "log_level": 0}
    if threads:
        cfg["threads_per_worker"] = threads
    if w.get("sel"):
        cfg["preprocessors"] = [dict(type="sel", **w["sel"])]
    if w.get("pre"):
        cfg["preprocessors"] = w["pre"]
    cfg.update(w.get("extra", {}))
    return cfg


def run_ours(w, files, work, runs, workers=2, threads=0, data_uri=None, after_each=None):
    """`after_each(cfg_path)`, when given, runs right after each timed run (the floor, so that each
    ratio compares two measurements taken on the same minute of this noisy VM)."""
    cfg_path = work / f"cfg_{workers}_{threads}.yaml"
    out = work / "ours.zarr"
    cfg = our_config(w, files, out, workers, threads)
    if data_uri:
        cfg.update(data_uri=data_uri, engine="kerchunk")
    cfg_path.write_text(json.dumps(cfg))
    measured = []
    for _ in range(runs):
        shutil.rmtree(out, ignore_errors=True)
        measured.append(timed([BIN / "zarr-parallel", "cache", cfg_path]))
        if after_each:
            after_each(cfg_path)
    stats = json.loads((out / ".zarr-parallel" / "stats.json").read_text())
    files = sum(1 for p in out.rglob("*") if p.is_file() and ".zarr-parallel" not in p.parts)
    return dict(**summary(measured), coordinator_rss_kb=max(r.rss_kb for r in measured), store_files=files,
                worker_rss_kb=stats["peak_rss_per_worker"] // 1024, read_bytes=stats["bytes_read"],
                needed_bytes=stats["bytes_needed"], read_amplification=stats["read_amplification"]), out, cfg_path


def same_values(ours, other, sel_applied=True, decoded=False):
    import xarray as xr
    import zarr
    if decoded:  # transforms: compare what xarray reads (padding and packing differ in form)
        a, b = xr.open_zarr(ours)["d2m"], xr.open_zarr(other)["d2m"]
        return a.dims == b.dims and np.array_equal(a.values, b.values, equal_nan=True)
    a = (zarrita_d2m(ours) if (Path(ours) / "zarr.json").exists()  # v3: zarr-python 2 cannot read it
         else zarr.open_consolidated(str(ours))["d2m"][:])
    if str(other).endswith(".nc"):
        b = xr.open_dataset(other, mask_and_scale=False)["d2m"].values
    else:
        b = zarr.open(str(other))["d2m"][:]
    return a.shape == b.shape and np.array_equal(a, b)


def zarrita_d2m(store):
    """`d2m` of a Zarr v3 store as zarrita (JavaScript, an independent reader) reads it: raw values."""
    modules = REPO / ".tools" / "node" / "node_modules"
    out = Path(store).parent / "zarrita_out"
    out.mkdir(exist_ok=True)
    proc = subprocess.run(["node", REPO / "tests" / "e2e" / "zarrita_read.mjs", modules, store, out, "d2m"],
                          capture_output=True, text=True, check=True)
    info = json.loads(proc.stdout)["arrays"]["d2m"]
    values = np.fromfile(out / "d2m.bin", dtype=np.dtype(info["dtype"]).newbyteorder("<")).reshape(info["shape"])
    shutil.rmtree(out)
    return values


def run_xarray(w, files, work, runs, distributed, reference_url=None):
    out = work / ("xr_dist.zarr" if distributed else "xr.zarr")
    spec = {"files": files, "chunks": w["chunks"], "source_chunks": SOURCE_CHUNKS, "out": str(out),
            "reference_url": reference_url,
            "sel": {k: v for k, v in (w.get("sel") or {}).items()}, "distributed": distributed,
            "transform": w.get("transform"), "pre": w.get("pre")}
    if spec["sel"].get("latitude"):
        spec["sel"]["latitude"] = spec["sel"]["latitude"]  # xarray's sel: descending latitude, same order
    measured = [timed([sys.executable, HERE / "baselines" / "xarray_to_zarr.py", json.dumps(spec)])
                for _ in range(runs)]
    return dict(**summary(measured), rss_kb=max(r.rss_kb for r in measured)), out


def run_gdal(w, files, work, runs):
    if not shutil.which("gdalmdimtranslate") or len(files) != 1:
        return None, None
    out = work / "gdal.zarr"
    c = ",".join(map(str, w["chunks"]))
    cmd = ["gdalmdimtranslate", "-q", "-of", "ZARR", "-co", "FORMAT=ZARR_V2", "-co", f"ARRAY:BLOCKSIZE={c}",
           "-co", "ARRAY:COMPRESS=BLOSC", "-co", "ARRAY:BLOSC_CNAME=lz4", "-co", "ARRAY:BLOSC_CLEVEL=5",
           "-co", "ARRAY:BLOSC_SHUFFLE=BYTE", "-array", "d2m", files[0], str(out)]
    measured = []
    for _ in range(runs):
        shutil.rmtree(out, ignore_errors=True)
        measured.append(timed(cmd))
    return summary(measured), out


def run_nccopy(w, files, work, runs):
    if not shutil.which("nccopy") or len(files) != 1:
        return None, None
    out = work / "nccopy.nc"
    c = ",".join(f"{d}/{n}" for d, n in zip(("time", "latitude", "longitude"), w["chunks"]))
    measured = []
    for _ in range(runs):
        out.unlink(missing_ok=True)
        measured.append(timed(["nccopy", "-k", "nc4", "-d", "1", "-s", "-c", c, files[0], str(out)]))
    return dict(**summary(measured), note="writes NetCDF-4 (zlib 1), not Zarr"), out


def floor(cfg_path, work):
    plan = work / "plan.json"
    plan.write_text(subprocess.run([BIN / "zarr-parallel", "plan", cfg_path, "--json"], capture_output=True,
                                   text=True, check=True).stdout)
    # --write-dir: also the in-memory floor, its chunks written where the workload's store is
    cpu0, machine0, t0 = children_cpu_seconds(), machine_cpu_seconds(), time.perf_counter()
    f = json.loads(subprocess.run([BIN / "zp-bench-floor", plan, "--cores", str(os.cpu_count()),
                                   "--write-dir", work], capture_output=True, text=True, check=True).stdout)
    others = (machine_cpu_seconds() - machine0) - (children_cpu_seconds() - cpu0)
    f["other_cores"] = round(max(0.0, others) / (time.perf_counter() - t0), 2)
    return f


def p1(work, runs):
    """Planning only: a kerchunk reference set of 20 years of hourly ERA5 (175,320 steps)."""
    steps = 175320
    refs = {".zgroup": '{"zarr_format":2}', ".zattrs": "{}"}

    def array(name, shape, chunks, dtype, dims, attrs, fill=None, comp=None, filters=None):
        refs[f"{name}/.zarray"] = json.dumps({"chunks": chunks, "compressor": comp, "dtype": dtype, "fill_value": fill,
                                              "filters": filters, "order": "C", "shape": shape, "zarr_format": 2})
        refs[f"{name}/.zattrs"] = json.dumps(dict(_ARRAY_DIMENSIONS=dims, **attrs))

    array("time", [steps], [steps], "<i4", ["time"], {"units": "hours since 1900-01-01 00:00:00.0", "calendar": "gregorian"})
    refs["time/0"] = "base64:" + base64.b64encode((876576 + np.arange(steps, dtype="<i4")).tobytes()).decode()
    array("latitude", [721], [721], "<f4", ["latitude"], {"units": "degrees_north"})
    refs["latitude/0"] = "base64:" + base64.b64encode(np.linspace(90, -90, 721).astype("<f4").tobytes()).decode()
    array("longitude", [1440], [1440], "<f4", ["longitude"], {"units": "degrees_east"})
    refs["longitude/0"] = "base64:" + base64.b64encode((np.arange(1440) * 0.25).astype("<f4").tobytes()).decode()
    array("d2m", [steps, 721, 1440], list(SOURCE_CHUNKS), "<i2", ["time", "latitude", "longitude"],
          {"scale_factor": 0.0018, "add_offset": 260.0}, fill=-32767, comp={"id": "zlib", "level": 1},
          filters=[{"id": "shuffle", "elementsize": 2}])
    gen = [{"key": "d2m/{{t}}.{{y}}.{{x}}", "url": "/data/era5_{{t}}.nc", "offset": "{{1000 + (y*8+x)*300000}}",
            "length": "250000", "dimensions": {"t": {"stop": steps // 24}, "y": {"stop": 8}, "x": {"stop": 8}}}]
    (work / "refs20y.json").write_text(json.dumps({"version": 1, "refs": refs, "gen": gen}))
    cfg = work / "p1.yaml"
    cfg.write_text(json.dumps({"data_uri": str(work / "refs20y.json"), "variables": ["d2m"],
                               "chunks": {"time": 24, "latitude": 91, "longitude": 180},
                               "cache_store": str(work / "p1.zarr")}))
    measured = [timed([BIN / "zarr-parallel", "plan", cfg, "--json"]) for _ in range(runs)]
    return dict(**summary(measured), rss_kb=max(r.rss_kb for r in measured))


def ab_runs(cfg_path, out, runs, ab_dir):
    """Ours from BIN (A) and from `ab_dir` (B), alternating run by run on the same config."""
    builds = {"a": BIN, "b": Path(ab_dir)}
    measured = {k: [] for k in builds}
    for _ in range(runs):
        for k, bindir in builds.items():
            shutil.rmtree(out, ignore_errors=True)
            measured[k].append(timed([bindir / "zarr-parallel", "cache", cfg_path]))
    r = {"a_bin": str(BIN), "b_bin": str(ab_dir), **{k: summary(v) for k, v in measured.items()}}
    r["b_over_a_wall"] = r["b"]["median"] / r["a"]["median"]
    r["b_over_a_cpu"] = r["b"]["cpu_median"] / r["a"]["cpu_median"]
    return r


def w7(files, work, runs, baselines, delay, ab_dir=None):
    """W1 with its source a kerchunk reference set (made by kerchunk 0.1.2) served by nginx on
    loopback, directly and through a TCP relay that delays each direction by delay/2 (a round trip
    of `delay`; this kernel has no netem)."""
    sys.path.insert(0, str(REPO / "tests" / "e2e"))
    from servers import LatencyProxy, Nginx
    www = work / "www"
    www.mkdir()
    for f in files:
        os.symlink(f, www / Path(f).name)
    env = dict(os.environ, PYTHONPATH=str(REPO.parent / "shared" / "vendor"))
    served = [www / Path(f).name for f in files]
    subprocess.run([sys.executable, HERE / "baselines" / "make_refs.py", www / "local.json", *served], check=True,
                   env=env)
    w = WORKLOADS["W1"]
    out = {}
    with Nginx(www, work / "nginx") as server:
        for label, d in (("loopback", 0.0), ("relay_0ms", 0.0), (f"relay_{int(delay * 1000)}ms_rtt", delay)):
            proxy = LatencyProxy(server.port, d / 2) if label != "loopback" else None
            base = (proxy.__enter__().url if proxy else server.url)
            try:
                refs = json.loads((www / "local.json").read_text())
                for v in refs["refs"].values():
                    if isinstance(v, list) and v and isinstance(v[0], str):
                        v[0] = f"{base}/{v[0]}"
                name = f"abs_{len(out)}.json"
                (www / name).write_text(json.dumps(refs))
                sub = work / label.replace("+", "_")
                sub.mkdir()
                if ab_dir:  # --ab: both builds alternating, no baselines
                    cfg_path = run_ours(w, files, sub, 1, data_uri=f"{base}/{name}")[2]
                    out[label] = ab_runs(cfg_path, sub / "ours.zarr", runs, ab_dir)
                    continue
                r = {"ours": run_ours(w, files, sub, runs, data_uri=f"{base}/{name}")[0]}
                if baselines:
                    res, xr_out = run_xarray(w, files, sub, runs, False, reference_url=f"{base}/{name}")
                    res["equal_to_ours"] = bool(same_values(sub / "ours.zarr", xr_out))
                    r["xarray_fsspec_threads"] = res
                out[label] = r
            finally:
                if proxy:
                    proxy.__exit__(None, None, None)
        nc_bytes = sum(n for path, status, n, _ in server.requests() if path.endswith(".nc"))
        out["nginx_nc_bytes_sent"] = nc_bytes
    return out


def w9(files, work, runs, delay):
    """W2 written to s3rver on loopback against W2 written to local disk, both `deploy_mode: local`
    with two workers, in the same run; the requests per stored object (counted through the test
    suite's S3 stand-in, a separate untimed run); and through the W7 relay (a round trip of `delay`)
    the writing throughput per worker with 16 requests in flight against 1 (ZP_HTTP_CONCURRENCY)."""
    sys.path.insert(0, str(REPO / "tests" / "e2e"))
    from servers import LatencyProxy, S3rver
    from test_s3_output import S3StandIn
    w, workers = WORKLOADS["W2"], 2
    out = {}
    local = run_ours(w, files, work, runs, workers=workers)[0]
    out["local_disk"] = local
    with S3rver(work / "s3") as s3:
        s3.client().create_bucket(Bucket="w9bench")

        def to_s3(label, endpoint, n, env=None):
            cfg = our_config(w, files, "unused", workers)
            cfg.update(cache_store=f"s3://w9bench/{label}.zarr", cache_storage_options=s3.options(endpoint_url=endpoint))
            cfg_path = work / f"{label}.yaml"
            cfg_path.write_text(json.dumps(cfg))
            measured = []
            for _ in range(n):
                listed = s3.client().list_objects_v2(Bucket="w9bench", Prefix=f"{label}.zarr/").get("Contents", [])
                for o in listed:  # a fresh store each run (no hit, no overwrite deletes)
                    s3.client().delete_object(Bucket="w9bench", Key=o["Key"])
                measured.append(timed([BIN / "zarr-parallel", "cache", cfg_path], env=dict(os.environ, **(env or {}))))
            objects = s3.client().list_objects_v2(Bucket="w9bench", Prefix=f"{label}.zarr/", MaxKeys=1000)["Contents"]
            data = [o for o in objects if "/.zarr-parallel/" not in o["Key"]]
            return dict(**summary(measured), objects=len(data), stored_bytes=sum(o["Size"] for o in data))

        out["s3_loopback"] = to_s3("loopback", s3.endpoint, runs)
        out["ratio_s3_to_disk"] = out["s3_loopback"]["median"] / local["median"]
        with S3StandIn(s3) as stand:
            counted = to_s3("counted", stand.url, 1)
            methods = {}
            for m, _ in stand.log:
                methods[m] = methods.get(m, 0) + 1
            counted.update(requests=len(stand.log), by_method=methods,
                           requests_per_object=len(stand.log) / counted["objects"])
            out["counted"] = counted
        with LatencyProxy(s3.port, delay / 2) as relay:
            for n in (16, 1):
                r = to_s3(f"relay_{n}", relay.url, runs, env={"ZP_HTTP_CONCURRENCY": str(n)})
                r["stored_mb_per_s"] = r["stored_bytes"] / 1e6 / r["median"]
                r["stored_mb_per_s_per_worker"] = r["stored_mb_per_s"] / workers
                out[f"relay_{int(delay * 1000)}ms_{n}_in_flight"] = r
    return out


def small_daily_files(data, nfiles):
    """`nfiles` small daily NetCDF-4 files (73 x 144, 24 steps, chunks (24, 73, 144), zlib): R1 and P2."""
    folder = data / f"refs_{nfiles}"
    if len(glob.glob(str(folder / "*.nc"))) != nfiles:
        shutil.rmtree(folder, ignore_errors=True)
        subprocess.run([BIN / "zp-make-sample", "--out", folder, "--files", str(nfiles), "--lat", "73", "--lon", "144",
                        "--chunks", "24", "73", "144", "--deflate", "1"], check=True, capture_output=True)
    return folder


def p2(data, work, runs, nfiles):
    """`zarr-parallel plan` of `nfiles` small daily files: cold in one process (ZP_PARALLEL_SCAN=0), cold
    with the parallel scan (the default), warm (from the manifest cache), and with the cache off.
    Files are read once first, so every run has them in the page cache."""
    folder = small_daily_files(data, nfiles)
    for f in sorted(folder.glob("*.nc")):
        f.read_bytes()
    cfg = work / "p2.yaml"
    cfg.write_text(f"data_uri: {folder}/*.nc\ncache_store: {work}/out.zarr\ndeploy_mode: series\n")
    cache = work / "cache"
    measured = {"one_process_cold": [], "parallel_cold": [], "warm": [], "cache_off": []}
    for _ in range(runs):
        for label, env, fresh in (("one_process_cold", {"ZP_PARALLEL_SCAN": "0"}, True), ("warm", {}, False),
                                  ("parallel_cold", {"ZP_PARALLEL_SCAN": "1"}, True),
                                  ("cache_off", {"ZP_CACHE_DIR": "off"}, False)):
            if fresh:
                shutil.rmtree(cache, ignore_errors=True)
            env = {"ZP_CACHE_DIR": str(cache), **env}
            measured[label].append(timed([BIN / "zarr-parallel", "plan", cfg], env=dict(os.environ, **env)))
    out = {k: statistics.median(r.wall for r in v) for k, v in measured.items()}
    out.update({"files": nfiles, "runs": {k: summary(v) for k, v in measured.items()},
                "parallel_speedup": out["one_process_cold"] / out["parallel_cold"]})
    return out


def r1(data, work, runs, nfiles):
    """`zarr-parallel refs` on `nfiles` small daily NetCDF-4 files (73 x 144, chunks (24, 73, 144))
    against kerchunk 0.1.2's SingleHdf5ToZarr + MultiZarrToZarr (bench/baselines/make_refs.py);
    both outputs read with fsspec + xarray and compared."""
    folder = small_daily_files(data, nfiles)
    files = sorted(glob.glob(str(folder / "*.nc")))
    ours, theirs = [], []
    for _ in range(runs):
        out = work / "ours.json"
        # A cold scan every run: the manifest cache would otherwise serve runs 2 and 3.
        ours.append(timed([BIN / "zarr-parallel", "refs", str(folder / "*.nc"), "-o", out],
                          env=dict(os.environ, ZP_CACHE_DIR="off")))
        env = dict(os.environ, PYTHONPATH=str(REPO.parent / "shared" / "vendor"))
        theirs.append(timed([sys.executable, HERE / "baselines" / "make_refs.py", "--absolute",
                             work / "kerchunk.json", *files], env=env))
    import xarray as xr

    def read(path):
        return xr.open_dataset("reference://", engine="zarr", chunks={}, backend_kwargs={
            "consolidated": False, "storage_options": {"fo": json.loads(Path(path).read_text())}})
    a, b = read(work / "ours.json"), read(work / "kerchunk.json")
    # Compared a block of steps at a time: 7,300 files hold 15 GB of values a reading.
    step = 240
    equal = set(a.variables) == set(b.variables) and a.sizes == b.sizes
    for v in b.variables:
        along = "time" in b[v].dims
        for lo in range(0, b.sizes["time"] if along else 1, step):
            x = a[v].isel(time=slice(lo, lo + step)) if along else a[v]
            y = b[v].isel(time=slice(lo, lo + step)) if along else b[v]
            equal = equal and np.array_equal(x.values, y.values, equal_nan=x.dtype.kind == "f")
    return {"files": nfiles, "ours": summary(ours), "kerchunk": summary(theirs),
            # each run of ours against kerchunk's run right after it
            "faster_by_median": statistics.median(k.wall / o.wall for o, k in zip(ours, theirs)),
            "read_equal": bool(equal)}


def paired(name, ours, floors, key):
    """Median of each run's wall over the floor measured right after it; also over the quiet runs only
    (neither the run nor its floor on a busy machine) when some were not."""
    pairs = [(r["wall"], f[key], r["busy"] or f["other_cores"] > BUSY_CORES) for r, f in zip(ours["runs"], floors)]
    out = {name: statistics.median(t / f for t, f, _ in pairs)}
    quiet = [t / f for t, f, busy in pairs if not busy]
    if quiet and len(quiet) < len(pairs):
        out[name + "_quiet"] = statistics.median(quiet)
    return out


def ab(name, w, files, work, args):
    """--ab DIR: ours from --bin (A) and from DIR (B), alternating run by run (A, floor, B, floor, ...),
    on the same config and data, so that one invocation compares two builds on the same minutes."""
    cfg_path, out = work / "cfg_ab.yaml", work / "ours.zarr"
    cfg_path.write_text(json.dumps(our_config(w, files, out)))
    builds = {"a": BIN, "b": Path(args.ab)}
    measured, floors = {k: [] for k in builds}, {k: [] for k in builds}
    for _ in range(args.runs):
        for k, bindir in builds.items():
            shutil.rmtree(out, ignore_errors=True)
            measured[k].append(timed([bindir / "zarr-parallel", "cache", cfg_path]))
            floors[k].append(floor(cfg_path, work))
    r = {"a_bin": str(BIN), "b_bin": str(builds["b"])}
    for k in builds:
        res = summary(measured[k])
        r[k] = {**res, **paired("ratio_median", res, floors[k], "floor_s"),
                **paired("ratio_mem_median", res, floors[k], "floor_mem_s"),
                "floor_median": statistics.median(f["floor_s"] for f in floors[k])}
    r["b_over_a_wall"] = r["b"]["median"] / r["a"]["median"]
    r["b_over_a_cpu"] = r["b"]["cpu_median"] / r["a"]["cpu_median"]
    return r


def workload(name, w, files, work, args):
    """Ours (each run followed by the floor), W2's worker scaling, and the baselines, all in this run."""
    if args.ab:
        return ab(name, w, files, work, args)
    floors = []
    ours, ours_out, cfg = run_ours(w, files, work, args.runs, after_each=lambda c: floors.append(floor(c, work)))
    r = {"ours": ours, "floor": sorted(floors, key=lambda f: f["floor_s"])[len(floors) // 2],
         "floor_s_each": [f["floor_s"] for f in floors], "floor_other_cores": [f["other_cores"] for f in floors],
         # each run against the floor measured right after it
         **paired("ratio_median", ours, floors, "floor_s"),
         # against the floor that counts page-cache reads and writes as CPU (zp-bench-floor)
         **paired("ratio_mem_median", ours, floors, "floor_mem_s")}
    if name == "W2":
        for label, workers, threads in (("ours_1_worker", 1, 1), ("ours_2_workers_1_thread", 2, 1)):
            (work / label).mkdir()
            r[label] = run_ours(w, files, work / label, args.runs, workers=workers, threads=threads)[0]
    if args.no_baselines:
        return r
    for label, fn in [("xarray_threads", lambda: run_xarray(w, files, work, args.runs, False)),
                      ("xarray_distributed", lambda: run_xarray(w, files, work, args.runs, True)),
                      ("gdalmdimtranslate", lambda: run_gdal(w, files, work, args.runs)),
                      ("nccopy", lambda: run_nccopy(w, files, work, args.runs))]:
        if w.get("transform") and label in ("gdalmdimtranslate", "nccopy"):
            continue  # neither rolls nor tiles
        res, out = fn()
        if res is None:
            continue
        res["equal_to_ours"] = bool(same_values(ours_out, out, decoded=bool(w.get("transform"))))
        res["ours_faster_by"] = res["median"] / ours["median"]  # both medians of this run
        r[label] = res
    return r


def main():
    global BUSY_CORES, BIN
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=10)
    ap.add_argument("--runs", type=int, default=5, help="runs of each tool; medians of these")
    ap.add_argument("--workloads", default="W0,W1,W2,W3,W5,W6,P1")
    ap.add_argument("--data", default=str(REPO / "bench" / "data"))
    ap.add_argument("--no-baselines", action="store_true")
    ap.add_argument("--out-dir", default=None,
                    help="where the workloads' stores are written (default: --data). This VM's root "
                         "file system is ext4 without a journal, where creating a file after a mass "
                         "delete scans the recently deleted inodes; /dev/shm avoids that artifact")
    ap.add_argument("--refs-files", type=lambda t: [int(x) for x in t.split(",")], default=[200, 1000],
                    help="R1: file counts")
    ap.add_argument("--scan-files", type=lambda t: [int(x) for x in t.split(",")], default=[1000, 7300],
                    help="P2: file counts")
    ap.add_argument("--delay", type=float, default=0.025, help="W7: seconds a proxy adds to each request")
    ap.add_argument("--bin", default=str(BIN), help="folder of the binaries to measure (another build's, for an A/B)")
    ap.add_argument("--ab", default=None,
                    help="another build's folder of binaries: W workloads alternate --bin's and this one's "
                         "runs (A/B in one invocation; no baselines)")
    ap.add_argument("--busy-cores", type=float, default=BUSY_CORES,
                    help="a run is flagged busy when other processes kept more cores than this busy during it")
    args = ap.parse_args()
    BUSY_CORES = args.busy_cores
    BIN = Path(args.bin)
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    sets = make_data(data, args.files)
    results = {}
    out_root = Path(args.out_dir) if args.out_dir else data
    out_root.mkdir(parents=True, exist_ok=True)
    for name in args.workloads.split(","):
        work = out_root / f"work_{name}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        if name == "P1":
            results[name] = {"ours": p1(work, args.runs)}
            print(name, json.dumps(results[name]), flush=True)
            continue
        if name == "P2":
            results[name] = [p2(data, work, args.runs, n) for n in args.scan_files]
            print(name, json.dumps(results[name]), flush=True)
            continue
        if name == "R1":
            results[name] = [r1(data, work, args.runs, n) for n in args.refs_files]
            print(name, json.dumps(results[name]), flush=True)
            continue
        if name == "W9":
            results[name] = w9(sets["daily"], work, args.runs, args.delay)
            print(name, json.dumps(results[name]), flush=True)
            continue
        if name == "W7":
            results[name] = w7(sets["daily"], work, args.runs, not args.no_baselines and not args.ab, args.delay,
                               args.ab)
            print(name, json.dumps(results[name]), flush=True)
            continue
        w = WORKLOADS[name]
        results[name] = workload(name, w, sets[w["files"]], work, args)
        print(name, json.dumps(results[name]), flush=True)
        if not args.ab and results[name]["ours"]["busy_runs"]:
            print(f"{name}: {results[name]['ours']['busy_runs']} of {args.runs} runs on a busy machine "
                  f"(other processes above {BUSY_CORES} cores)", file=sys.stderr, flush=True)
    (HERE / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
