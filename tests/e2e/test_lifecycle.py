"""Runs, re-runs, lost workers, resume, plans and errors: what a user of a cluster depends on."""
import json
import re
import os
import subprocess
import time
from pathlib import Path

import pytest
import xarray as xr

from conftest import (BIN, ERA5, assert_matches, base_config, need_fixtures, open_kerchunk, planted_libraries,
                      run_cache, store_files)


def test_second_identical_run_is_a_cache_hit(tmp_path):
    need_fixtures()
    store = tmp_path / "hit.zarr"
    run_cache(tmp_path, base_config(store), check=0)
    chunk = store / "d2m" / "0.0.0"
    before = chunk.stat().st_mtime_ns
    t0 = time.monotonic()
    proc = run_cache(tmp_path, base_config(store), check=0)
    assert "cache hit" in proc.stderr
    assert time.monotonic() - t0 < 5
    assert chunk.stat().st_mtime_ns == before
    # A different config never silently reuses the store: it is rebuilt (overwrite: true) ...
    proc = run_cache(tmp_path, base_config(store, encoding="decoded"), check=0)
    assert "cache hit" not in proc.stderr
    assert xr.open_zarr(store).d2m.encoding["dtype"].kind == "f"
    # ... or refused (overwrite: false), leaving the old store alone.
    proc = run_cache(tmp_path, base_config(store, overwrite=False), check=5)
    assert "overwrite" in proc.stderr
    assert xr.open_zarr(store).d2m.encoding["dtype"].kind == "f"


def test_killed_worker_is_replaced_and_store_is_identical(tmp_path):
    need_fixtures()
    clean = tmp_path / "clean.zarr"
    run_cache(tmp_path, base_config(clean, deploy_mode="series"), check=0)
    store = tmp_path / "killed.zarr"
    flag = tmp_path / "fault-fired"
    proc = run_cache(tmp_path, base_config(store), env={"ZP_FAULT_KILL_ONCE": str(flag)}, check=0)
    assert flag.exists(), "the fault was not injected"
    assert "running it again" in proc.stderr
    assert store_files(store) == store_files(clean)


def test_silent_worker_is_declared_lost_and_replaced(tmp_path):
    need_fixtures()
    clean = tmp_path / "clean.zarr"
    run_cache(tmp_path, base_config(clean, deploy_mode="series"), check=0)
    store = tmp_path / "stopped.zarr"
    flag = tmp_path / "fault-fired"
    t0 = time.monotonic()
    # Copies off: the other worker would copy the stopped one's job before its heartbeat timeout.
    proc = run_cache(tmp_path, base_config(store, worker_timeout="0:02"),
                     env={"ZP_FAULT_STOP_ONCE": str(flag), "ZP_FAULT_NO_COPIES": "1"}, check=0)
    assert flag.exists(), "the fault was not injected"
    assert "no heartbeat for 2 s" in proc.stderr and "running it again" in proc.stderr
    assert time.monotonic() - t0 < 30
    assert store_files(store) == store_files(clean)


def test_resume_after_coordinator_killed_redoes_only_unfinished_jobs(tmp_path):
    need_fixtures()
    clean = tmp_path / "clean.zarr"
    run_cache(tmp_path, base_config(clean, deploy_mode="series"), check=0)
    store = tmp_path / "resumed.zarr"
    flag = tmp_path / "fault-fired"
    cfg = base_config(store, deploy_mode="series")
    proc = run_cache(tmp_path, cfg, env={"ZP_FAULT_KILL_ONCE": str(flag)})
    assert proc.returncode == -9, proc.stderr  # the coordinator itself was killed mid-job
    assert not (store / ".zarr-parallel" / "complete.json").exists()
    assert not (store / ".zmetadata").exists()
    done_before = len(list((store / ".zarr-parallel" / "jobs").glob("*.done")))
    # Resumed in another mode: this run's workers, not the first plan's one.
    proc = run_cache(tmp_path, dict(cfg, resume=True, deploy_mode="local"), check=0)
    assert f"({done_before} already done)" in proc.stderr
    assert "2 workers at most" in proc.stderr, proc.stderr
    assert store_files(store) == store_files(clean)
    expected = open_kerchunk(ERA5 / "refs.json")
    assert_matches(store, expected)


def test_plan_reports_amplification_and_recommendations(tmp_path):
    need_fixtures()
    aligned = {"data_uri": str(ERA5 / "refs.json"), "variables": ["d2m"], "cache_store": str(tmp_path / "p.zarr"),
               "preprocessors": [{"type": "sel", "latitude": [90, -2.5], "longitude": [90, 267.5]}],
               "chunks": {"time": 48, "latitude": 19, "longitude": 72}}
    plan = json.loads(run_cache(tmp_path, aligned, "--json", command="plan", check=0).stdout)
    assert plan["summary"]["read_amplification"] == 1.0
    assert plan["recommendations"] == []
    assert not (tmp_path / "p.zarr").exists()  # plan writes nothing
    jobs = plan["jobs"]
    chunks = [tuple(j["region"]["lo"]) for j in jobs]
    assert len(set(chunks)) == len(jobs) >= 4
    misaligned = dict(aligned, preprocessors=[{"type": "sel", "latitude": [60, -30]}],
                      chunks={"time": 24, "latitude": 19, "longitude": 50})
    plan = json.loads(run_cache(tmp_path, misaligned, "--json", command="plan", check=0).stdout)
    keys = {r["key"] for r in plan["recommendations"]}
    assert "preprocessors[0].latitude" in keys and "chunks.longitude" in keys
    text = run_cache(tmp_path, misaligned, command="plan", check=0).stdout
    assert "read amplification" in text and "widen to [90, -50]" in text


def test_memory_limit_forces_rereads_and_says_so(tmp_path):
    need_fixtures()
    cfg = {"data_uri": str(ERA5 / "refs.json"), "variables": ["t2m"], "cache_store": str(tmp_path / "m.zarr"),
           "chunks": {"time": 96, "latitude": 73, "longitude": 10}, "memory_limit": "46MB",
           "deploy_mode": "series"}
    plan = json.loads(run_cache(tmp_path, cfg, "--json", command="plan", check=0).stdout)
    assert plan["summary"]["read_amplification"] > 1.0
    assert plan["summary"]["peak_memory_per_worker"] <= 46_000_000
    assert "memory_limit" in {r["key"] for r in plan["recommendations"]}
    run_cache(tmp_path, cfg, "--yes", check=0)
    assert_matches(tmp_path / "m.zarr", open_kerchunk(ERA5 / "refs.json")[["t2m"]])


def test_a_resume_with_less_memory_than_its_jobs_need_is_refused(tmp_path):
    need_fixtures()
    store = tmp_path / "m.zarr"
    cfg = {"data_uri": str(ERA5 / "refs.json"), "variables": ["t2m"], "cache_store": str(store),
           "chunks": {"time": 96, "latitude": 73, "longitude": 10}, "deploy_mode": "series",
           "recommend_changes": False}
    killed = run_cache(tmp_path, cfg, env={"ZP_FAULT_KILL_ONCE": str(tmp_path / "fired")})
    assert killed.returncode == -9, killed.stderr
    # Planned with the default limit its one job reads each source chunk once (about 48 MB); 46 MB
    # can be planned (re-reading), but not run with those jobs: before, the resume ran them anyway.
    low = run_cache(tmp_path, dict(cfg, resume=True, memory_limit="46MB"))
    assert low.returncode == 2, low.stderr
    assert "memory_limit" in low.stderr and "planned with" in low.stderr and "overwrite: true" in low.stderr
    run_cache(tmp_path, dict(cfg, resume=True), check=0)
    assert_matches(store, open_kerchunk(ERA5 / "refs.json")[["t2m"]])


def test_a_damaged_saved_plan_is_the_stores_fault_and_a_rebuild_mends_it(tmp_path):
    """`status` and a resume of a store whose saved plan is damaged say so as a store error (exit 5,
    naming the store and what to do), not as a config key. Without the plan, which files in the
    store are ours is not known: a rebuild deletes none and is refused too, until the user removes
    the store."""
    need_fixtures()
    store = tmp_path / "p.zarr"
    cfg = base_config(store, deploy_mode="series", recommend_changes=False)
    killed = run_cache(tmp_path, cfg, env={"ZP_FAULT_KILL_ONCE": str(tmp_path / "fired")})
    assert killed.returncode == -9, killed.stderr
    (store / ".zarr-parallel" / "plan.json").write_text('{"format": "zarr-parallel-plan", "vers')
    status = subprocess.run([str(BIN), "status", str(store)], capture_output=True, text=True)
    for proc in (status, run_cache(tmp_path, dict(cfg, resume=True))):
        assert proc.returncode == 5, proc.stderr
        assert f"store '{store}': its saved plan" in proc.stderr and "remove the store yourself" in proc.stderr
        assert "config key" not in proc.stderr
    before = store_files(store)
    rebuild = run_cache(tmp_path, cfg, check=5)
    assert "remove the store yourself" in rebuild.stderr and store_files(store) == before
    subprocess.run(["rm", "-rf", str(store)], check=True)
    run_cache(tmp_path, cfg, check=0)
    assert_matches(store, open_kerchunk(ERA5 / "refs.json").sel(time=slice("2000-01-01", "2000-01-04")))


def test_errors_have_documented_exit_codes_and_leave_no_store(tmp_path):
    need_fixtures()
    store = tmp_path / "bad.zarr"
    good = {"data_uri": str(ERA5 / "refs.json"), "cache_store": str(store)}
    cases = [
        (dict(good, colour="blue"), 2, "colour"),
        (dict(good, variables=["nope"]), 2, "nope"),
        (dict(good, preprocessors=[{"type": "zoom"}]), 2, "zoom"),
        (dict(good, preprocessors=[{"type": "sel", "latitude": [100, 95]}]), 2, "selects nothing"),
        (dict(good, preprocessors=[{"type": "sel", "height": [1, 2]}]), 2, "height"),
        (dict(good, memory_limit="lots"), 2, "memory_limit"),
        (dict(good, chunks={"depth": 3}), 2, "depth"),
        (dict(good, data_uri=str(tmp_path / "missing_*.nc")), 4, "missing_"),
        (dict(good, data_uri=str(tmp_path / "missing.json")), 4, "missing.json"),
        # A plan that re-reads source chunks (read amplification above 1): its recommendation saves.
        (dict(good, variables=["t2m"], chunks={"time": 96, "latitude": 73, "longitude": 10}, memory_limit="46MB"),
         3, "recommendations"),
    ]
    for cfg, code, word in cases:
        proc = run_cache(tmp_path, cfg)
        assert proc.returncode == code, (cfg, proc.returncode, proc.stderr)
        assert word in proc.stderr, (word, proc.stderr)
        assert "Traceback" not in proc.stderr and "terminate" not in proc.stderr
        assert not store.exists(), cfg


def test_broken_source_chunk_names_file_variable_and_chunk(tmp_path):
    need_fixtures()
    refs = json.loads((ERA5 / "refs.json").read_text())
    url, offset, length = refs["refs"]["d2m/1.0.0"]
    refs["refs"]["d2m/1.0.0"] = [str(ERA5 / url), offset + 7, length]  # misaligned: not a zlib stream
    for key, value in refs["refs"].items():
        if isinstance(value, list):
            value[0] = str(ERA5 / Path(value[0]).name)
    bad = tmp_path / "bad_refs.json"
    bad.write_text(json.dumps(refs))
    store = tmp_path / "broken.zarr"
    proc = run_cache(tmp_path, {"data_uri": str(bad), "cache_store": str(store), "deploy_mode": "series"})
    assert proc.returncode == 4, proc.stderr
    assert "d2m" in proc.stderr and "chunk (1, 0, 0)" in proc.stderr and "era5_small_20000102.nc" in proc.stderr
    assert not (store / ".zarr-parallel" / "complete.json").exists()
    assert not (store / ".zmetadata").exists()


def job_source_chunks(job):
    """A plan job's source chunk indices: a list, or [start, count] runs."""
    out = []
    for x in job["source_chunks"]:
        out.extend(range(x[0], x[0] + x[1]) if isinstance(x, list) else [x])
    return out


def test_local_workers_take_job_after_job_each_with_its_log(tmp_path):
    """Two local workers serve eight jobs: two processes in all, largest jobs first, and each job's
    lines in its own log. The job handed out last reads a broken chunk: its error is in its log
    (not in the log of its worker's first job) and the run names that log."""
    need_fixtures()
    store = tmp_path / "served.zarr"
    run_cache(tmp_path, base_config(store, variables=["d2m"]), check=0)
    done = [json.loads(p.read_text()) for p in (store / ".zarr-parallel" / "jobs").glob("*.done")]
    total = len(json.loads((store / ".zarr-parallel" / "plan.json").read_text())["jobs"])
    assert len(done) == total > 4 and len({d["pid"] for d in done}) == 2, done
    assert_matches(store, open_kerchunk(ERA5 / "refs.json")[["d2m"]].sel(time=slice("2000-01-01", "2000-01-04")))

    refs = json.loads((ERA5 / "refs.json").read_text())
    for key, value in refs["refs"].items():
        if isinstance(value, list):
            value[0] = str(ERA5 / Path(value[0]).name)
    bad = tmp_path / "bad_refs.json"
    bad.write_text(json.dumps(refs))
    cfg = base_config(tmp_path / "broken.zarr", data_uri=str(bad), variables=["d2m"])
    plan = json.loads(run_cache(tmp_path, cfg, "--json", command="plan", check=0).stdout)
    jobs = sorted(plan["jobs"], key=lambda j: -(j["output_bytes"] + j["read_bytes"]))  # stable, as handed out
    last = jobs[-1]
    zarray = json.loads(refs["refs"]["d2m/.zarray"])
    shape = [-(-n // c) for n, c in zip(zarray["shape"], zarray["chunks"])]  # the source chunk grid
    flat = job_source_chunks(last)[0]
    idx = (flat // (shape[1] * shape[2]), flat // shape[2] % shape[1], flat % shape[2])
    key = "d2m/" + ".".join(map(str, idx))
    url, offset, length = refs["refs"][key]
    refs["refs"][key] = [url, offset + 7, length]  # misaligned: not a zlib stream
    bad.write_text(json.dumps(refs))
    proc = run_cache(tmp_path, cfg)
    assert proc.returncode == 6, proc.stderr  # a job failed
    logs = tmp_path / "broken.zarr" / ".zarr-parallel" / "logs"
    own = logs / f"job-{last['id']}.log"
    assert f"job {last['id']} failed" in proc.stderr and str(own) in proc.stderr, proc.stderr
    assert "chunk (" + ", ".join(map(str, idx)) + ")" in own.read_text()
    others = [p for p in logs.glob("job-*.log") if p != own]
    assert others and not any("chunk (" in p.read_text() for p in others)


def test_status_and_inspect(tmp_path):
    need_fixtures()
    store = tmp_path / "st.zarr"
    run_cache(tmp_path, base_config(store), check=0)
    import subprocess
    from conftest import BIN
    out = subprocess.run([str(BIN), "status", str(store)], capture_output=True, text=True)
    jobs = len(json.loads((store / ".zarr-parallel" / "plan.json").read_text())["jobs"])
    assert out.returncode == 0 and "complete" in out.stdout and f"{jobs} / {jobs} done" in out.stdout
    out = subprocess.run([str(BIN), "inspect", str(ERA5 / "refs.json"), "--json"], capture_output=True, text=True)
    info = json.loads(out.stdout)
    d2m = next(v for v in info["variables"] if v["name"] == "d2m")
    assert d2m["chunks"] == [24, 19, 36] and d2m["dtype"] == "<i2" and d2m["fill_value"] == -32767
    assert os.path.exists(store / ".zarr-parallel" / "plan.json")


def test_verify_finds_one_flipped_byte(tmp_path):
    need_fixtures()
    store = tmp_path / "v.zarr"
    cfg = base_config(store, compressor=None)
    run_cache(tmp_path, cfg, check=0)
    proc = run_cache(tmp_path, cfg, command="verify", check=0)
    assert " 0 different" in proc.stdout
    chunk = store / "t2m" / "1.2.3"
    data = bytearray(chunk.read_bytes())
    data[101] ^= 0x10
    chunk.write_bytes(bytes(data))
    proc = run_cache(tmp_path, cfg, command="verify", check=1)
    assert "t2m/1.2.3: element 25 differs" in proc.stdout and "1 different" in proc.stdout
    (store / "d2m" / "0.0.0").unlink()
    proc = run_cache(tmp_path, cfg, command="verify", check=1)
    assert "d2m/0.0.0: missing" in proc.stdout
    run_cache(tmp_path, dict(cfg, cache_store=str(tmp_path / "none.zarr")), command="verify", check=2)


def test_store_lock_refuses_a_live_holder_and_frees_with_a_dead_one(tmp_path):
    need_fixtures()
    import fcntl
    import socket
    store = tmp_path / "locked.zarr"
    lock = tmp_path / ".locked.zarr.zp-lock"  # beside the store, so it exists before the store does
    flag = tmp_path / "fault-fired"
    cfg = base_config(store, deploy_mode="series")
    assert run_cache(tmp_path, cfg, env={"ZP_FAULT_KILL_ONCE": str(flag)}).returncode == -9
    # The killed coordinator's lock died with it (flock): resuming needs no takeover.
    with open(lock, "a+") as held:  # a live holder: this process, as another run would
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.truncate(0)
        held.write(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}))
        held.flush()
        proc = run_cache(tmp_path, dict(cfg, resume=True), check=5)
        assert f"pid {os.getpid()}" in proc.stderr and "another zarr-parallel run" in proc.stderr
        assert not (store / ".zarr-parallel" / "complete.json").exists()
    run_cache(tmp_path, dict(cfg, resume=True), check=0)
    assert (store / ".zarr-parallel" / "complete.json").exists() and not lock.exists()


def test_the_last_progress_line_has_the_runs_totals_piped_and_on_a_terminal(tmp_path):
    """Not "0 workers, 0 s elapsed" for a finished run: jobs, time, bytes and how many workers ran."""
    import re
    import shlex
    import shutil as sh
    need_fixtures()
    cfg = {"data_uri": str(ERA5 / "refs.json"), "cache_store": str(tmp_path / "p.zarr"), "num_jobs": 3,
           "simultaneous_worker_limit": 2, "recommend_changes": False, "generate_stats": True}
    proc = run_cache(tmp_path, cfg, check=0)
    m = re.search(r"3/3 jobs done in \d+\.\d\d s, ([\d.]+) ([kM])B read, [\d.]+ [kM]B written, [\d.]+ [kM]B/s, "
                  r"2 workers at most", proc.stderr)
    assert m, proc.stderr
    stats = json.loads((tmp_path / "p.zarr" / ".zarr-parallel" / "stats.json").read_text())
    shown = float(m.group(1)) * (1e3 if m.group(2) == "k" else 1e6)
    assert abs(shown - stats["bytes_read"]) <= 0.06 * stats["bytes_read"], (shown, stats["bytes_read"])
    if not sh.which("script"):
        return
    cfg_path = next(tmp_path.glob("config_*.yaml"))
    sh.rmtree(tmp_path / "p.zarr")
    term = subprocess.run(["script", "-qc", f"{shlex.quote(str(BIN))} cache {shlex.quote(str(cfg_path))}", "/dev/null"],
                          capture_output=True, text=True, timeout=120)
    lines = [x for x in term.stdout.replace("\r", "\n").splitlines() if x.strip()]
    assert any(re.search(r"3/3 jobs done in .* 2 workers at most", x) for x in lines), lines


def png_pixels(path):
    """Width, height and the set of RGB colours of an 8-bit RGBA/RGB PNG (rsvg-convert's output)."""
    import struct
    import zlib
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            width, height, depth, ctype = struct.unpack(">IIBB", chunk[:10])
            assert depth == 8 and ctype in (2, 6)
            bpp = 4 if ctype == 6 else 3
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev, colours = [], bytearray(stride), set()
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        colours.update(tuple(line[i:i + 3]) for i in range(0, stride, bpp))
        prev = line
    return width, height, colours


@pytest.mark.parametrize("kind", ["misaligned", "tiled"])
def test_plan_picture_renders_with_its_jobs_colours(tmp_path, kind):
    import shutil as sh
    need_fixtures()
    if not sh.which("rsvg-convert"):
        pytest.fail("rsvg-convert is missing: scripts/setup.sh installs librsvg2-bin")
    pre = ([{"type": "sel", "latitude": [60, -30], "longitude": [40, 100]}] if kind == "misaligned" else
           [{"type": "reverse_axis", "dim": "latitude"}, {"type": "tiled", "time": 24, "latitude": 10, "longitude": 36}])
    cfg = {"data_uri": str(ERA5 / "refs.json"), "cache_store": str(tmp_path / "x.zarr"), "preprocessors": pre,
           "variables": ["d2m"], "num_jobs": 4}
    if kind == "misaligned":
        cfg["chunks"] = {"time": 24, "latitude": 10, "longitude": 20}
    svg = tmp_path / "plan.svg"
    # time x longitude: the jobs of these plans differ along time (by default the map is drawn).
    dims = ["--svg-dims", "time,longitude"]
    proc = run_cache(tmp_path, cfg, "--svg", str(svg), *dims, command="plan")
    assert proc.returncode == 0, proc.stderr
    text = svg.read_text()
    assert "read amplification 1.00" in text and "d2m" in text
    # Drawn again over its own picture; a file it did not write is refused and left as it was.
    assert run_cache(tmp_path, cfg, "--svg", str(svg), *dims, command="plan").returncode == 0
    mine = tmp_path / "notes.svg"
    mine.write_text("<svg>my drawing</svg>")
    proc = run_cache(tmp_path, cfg, "--svg", str(mine), command="plan")
    assert proc.returncode == 5 and "not a plan picture" in proc.stderr
    assert mine.read_text() == "<svg>my drawing</svg>"
    if kind == "misaligned":
        assert 'stroke="#d00000" stroke-width="3"' in text  # the latitude edges cut source chunks
    png = tmp_path / "plan.png"
    subprocess.run(["rsvg-convert", str(svg), "-o", str(png)], check=True, timeout=60)
    width, height, colours = png_pixels(png)
    assert width == 640 and height > 200
    jobs = [(0x4e, 0x79, 0xa7), (0xf2, 0x8e, 0x2b), (0x59, 0xa1, 0x4f), (0xb0, 0x7a, 0xa1)]
    # Filled at 85% over white: each job's colour blended with white appears.
    blended = {tuple(round(0.85 * c + 0.15 * 255) for c in rgb) for rgb in jobs}
    seen = {c for c in colours if any(all(abs(c[i] - b[i]) <= 2 for i in range(3)) for b in blended)}
    assert len(seen) >= 4 if kind == "misaligned" else len(seen) >= 2, sorted(seen)[:10]
    assert not (tmp_path / "x.zarr").exists()


def test_cmake_install_gives_a_working_command(tmp_path):
    """`cmake --install BUILD --prefix P`: P/bin/zarr-parallel runs a local cache (its workers are
    itself, found through /proc/self/exe) and P/include/zarr_parallel holds the headers."""
    import shutil as sh
    need_fixtures()
    build = BIN.parent.parent
    if not (build / "cmake_install.cmake").exists() or not sh.which("cmake"):
        pytest.skip("not a CMake build folder")
    prefix = tmp_path / "prefix"
    subprocess.run(["cmake", "--install", str(build), "--prefix", str(prefix)], check=True, capture_output=True,
                   timeout=120)
    exe = prefix / "bin" / "zarr-parallel"
    assert exe.exists() and (prefix / "include" / "zarr_parallel" / "plan" / "planner.hpp").exists()
    # Neither the built nor the installed command loads libraries from the folder it runs in.
    planted = planted_libraries(tmp_path / "planted", BIN)
    for binary in (BIN, exe):
        proc = subprocess.run([str(binary), "--version"], capture_output=True, text=True, cwd=planted, timeout=60)
        assert proc.returncode == 0, f"{binary}: {proc.stderr}"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(json.dumps({"data_uri": str(ERA5 / "refs.json"), "cache_store": str(tmp_path / "i.zarr"),
                               "deploy_mode": "local", "num_jobs": 2, "recommend_changes": False}))
    proc = subprocess.run([str(exe), "cache", str(cfg)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert xr.open_zarr(tmp_path / "i.zarr").d2m.shape == open_kerchunk(ERA5 / "refs.json").d2m.shape
    # The CMake package: a program outside the tree finds the library and links it.
    if b"__asan_init" in BIN.read_bytes():
        return  # the sanitizer build's libraries need its link flags, which a package does not carry
    app = tmp_path / "app"
    app.mkdir()
    (app / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.20)\nproject(app CXX)\nset(CMAKE_CXX_STANDARD 20)\n"
        "find_package(zarr_parallel 0.1 REQUIRED)\nadd_executable(app main.cpp)\n"
        "target_link_libraries(app PRIVATE zarr_parallel::zp_exec)\n")
    (app / "main.cpp").write_text(
        '#include <cstdio>\n#include <zarr_parallel/source/open_source.hpp>\n'
        'int main(int, char** argv) {\n  const zp::Dataset ds = zp::open_source(argv[1], "auto", "");\n'
        '  for (const auto& v : ds.variables) std::printf("%s\\n", v.name.c_str());\n}\n')
    for cmd in (["cmake", "-S", str(app), "-B", str(app / "b"), f"-DCMAKE_PREFIX_PATH={prefix}"],
                ["cmake", "--build", str(app / "b")]):
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    proc = subprocess.run([str(app / "b" / "app"), str(ERA5 / "refs.json")], capture_output=True, text=True)
    assert proc.returncode == 0 and set(proc.stdout.split()) == {"d2m", "t2m", "time", "latitude", "longitude"}, \
        proc.stdout + proc.stderr


def test_json_event_stream(tmp_path):
    """`cache --json`: stdout is one JSON object a line, from the plan to completion; a cache hit and
    an error are events too. Human lines stay on stderr."""
    need_fixtures()
    cfg = {"data_uri": str(ERA5 / "refs.json"), "cache_store": str(tmp_path / "e.zarr"), "deploy_mode": "local",
           "chunks": {"time": 24}}
    proc = run_cache(tmp_path, cfg, "--json", check=0)
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    names = [e["event"] for e in events]
    assert names[0] == "plan" and names[1] == "start" and names[-2:] == ["done", "complete"], names
    plan = events[0]
    assert names.count("job_done") == plan["jobs_total"] == 5, names
    done = events[-2]
    assert done["jobs_done"] == done["jobs_total"] == 5 and done["bytes_written"] > 0 and done["workers"] >= 1
    assert events[-1]["store"] == str(tmp_path / "e.zarr")
    hit = run_cache(tmp_path, cfg, "--json", check=0)
    assert [json.loads(line)["event"] for line in hit.stdout.splitlines()] == ["cache_hit"]
    bad = run_cache(tmp_path, dict(cfg, chunks={"nosuchdim": 3}), "--json", check=2)
    error = json.loads(bad.stdout.splitlines()[-1])
    assert error["event"] == "error" and error["exit_code"] == 2 and "nosuchdim" in error["message"]


def test_json_stop_on_recommendations_is_an_event(tmp_path):
    """`cache --json` stopped by a recommendation that saves something (exit 3) says so on stdout:
    a `recommendation` event each, then `stopped`; advice that saves nothing does not stop."""
    need_fixtures()
    store = tmp_path / "r.zarr"
    cfg = {"data_uri": str(ERA5 / "refs.json"), "variables": ["t2m"], "cache_store": str(store),
           "chunks": {"time": 96, "latitude": 73, "longitude": 10}, "memory_limit": "46MB", "deploy_mode": "series"}
    proc = run_cache(tmp_path, cfg, "--json", check=3)
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    recs = [e for e in events if e["event"] == "recommendation"]
    assert any(r["key"] == "memory_limit" and r["saves"] and "read amplification" in r["message"] for r in recs)
    assert events[-1] == {"event": "stopped", "reason": "recommendations", "exit_code": 3}
    assert not store.exists()
    # A selection that cuts source chunks read once anyway (read amplification 1.00): said, and cached.
    edge = {"data_uri": str(ERA5 / "refs.json"), "variables": ["d2m"], "cache_store": str(tmp_path / "e.zarr"),
            "preprocessors": [{"type": "sel", "latitude": [60, -30]}], "deploy_mode": "series"}
    proc = run_cache(tmp_path, edge, "--json", check=0)
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [e["saves"] for e in events if e["event"] == "recommendation"] == [False], events
    assert events[-1]["event"] == "complete" and "saves no reads or memory" in proc.stderr


def test_chunk_sizes_that_cut_source_chunks_read_once_do_not_stop_a_run(tmp_path):
    """Output chunks (24, 10, 20) over source chunks (24, 19, 36): every source chunk is still read
    once, and the aligned sizes save 0.5 MB of 42 MB; said, not a stop (was exit 3, saves true)."""
    need_fixtures()
    cfg = {"data_uri": str(ERA5 / "refs.json"), "variables": ["d2m"], "cache_store": str(tmp_path / "c.zarr"),
           "chunks": {"time": 24, "latitude": 10, "longitude": 20}, "deploy_mode": "series"}
    proc = run_cache(tmp_path, cfg, "--json", check=0)
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    recs = [e for e in events if e["event"] == "recommendation"]
    assert {r["key"] for r in recs} == {"chunks.latitude", "chunks.longitude"}, recs
    assert not any(r["saves"] for r in recs) and events[-1]["event"] == "complete"


def test_status_json_exit_code_and_help_without_the_binary_path(tmp_path):
    need_fixtures()
    store = tmp_path / "s.zarr"
    cfg = {"data_uri": str(ERA5 / "refs.json"), "variables": ["d2m"], "cache_store": str(store),
           "chunks": {"time": 24, "latitude": 19, "longitude": 36}, "deploy_mode": "series"}
    run_cache(tmp_path, cfg, check=0)
    assert subprocess.run([str(BIN), "status", str(store), "--json"], capture_output=True).returncode == 0
    (store / ".zarr-parallel" / "complete.json").unlink()  # as a run cut short leaves it
    for extra in ([], ["--json"]):
        proc = subprocess.run([str(BIN), "status", str(store), *extra], capture_output=True, text=True)
        assert proc.returncode == 1, (extra, proc.stdout)
    # Run through a link elsewhere (as the pip package's command runs its engine binary).
    link = tmp_path / "somewhere" / "bin" / "zarr-parallel"
    link.parent.mkdir(parents=True)
    link.symlink_to(BIN)
    out = subprocess.run([str(link), "--help"], capture_output=True, text=True).stdout
    assert "Usage: zarr-parallel " in out and str(link) not in out, out[:300]


def test_plan_picture_draws_the_dimensions_asked_for(tmp_path):
    need_fixtures()
    cfg = {"data_uri": str(ERA5 / "refs.json"), "cache_store": str(tmp_path / "x.zarr"), "variables": ["d2m"],
           "chunks": {"time": 24, "latitude": 10, "longitude": 20}}
    default, chosen = tmp_path / "a.svg", tmp_path / "b.svg"
    assert run_cache(tmp_path, cfg, "--svg", str(default), command="plan").returncode == 0
    proc = run_cache(tmp_path, cfg, "--svg", str(chosen), "--svg-dims", "time,latitude", command="plan")
    assert proc.returncode == 0, proc.stderr
    # The axis labels name each drawn dimension (columns →, rows ↓) with its length: by default the
    # map (the last two: latitude 73, longitude 144; time x longitude was a sliver for a time-series
    # rechunk), saying along which other dimension the jobs differ; else the ones asked for.
    a, b = default.read_text(), chosen.read_text()
    assert "longitude → (144 values" in a and "latitude ↓ (73 values" in a
    assert "jobs also differ along time" in a and "jobs also differ along" not in b
    assert "latitude → (73 values" in b and "time ↓ (96 values" in b and "longitude →" not in b
    proc = run_cache(tmp_path, cfg, "--svg", str(tmp_path / "c.svg"), "--svg-dims", "height", command="plan")
    assert proc.returncode == 2 and "height" in proc.stderr
    # Twelve jobs: none is filled in a red, which marks re-reads and cutting selections.
    many = dict(cfg, num_jobs=10, chunks={"time": 24, "latitude": 19, "longitude": 36})
    assert run_cache(tmp_path, many, "--svg", str(default), "--svg-dims", "time,longitude",
                     command="plan").returncode == 0
    fills = set(re.findall(r'fill="#([0-9a-f]{6})" fill-opacity', default.read_text()))
    assert len(fills) >= 4, fills  # jobs 0, 3, 6, 9 at latitude chunk 0
    reds = [f for f in fills if int(f[0:2], 16) > 200 and int(f[2:4], 16) < 170 and int(f[4:6], 16) < 170]
    assert not reds, reds


def test_the_loader_searches_libc_first():
    """Symbol lookups at start go through the libraries in load order: libc, libm, libstdc++ and
    libgcc_s, which define most of what the others need, come first (40-60% less loader work)."""
    if b"__asan_init" in BIN.read_bytes():
        pytest.skip("a sanitizer's runtime comes first there")
    loaded = subprocess.run([str(BIN), "--version"], capture_output=True, text=True,
                            env=dict(os.environ, LD_DEBUG="files")).stderr
    needed = [line.split("file=")[1].split()[0] for line in loaded.splitlines()
              if "needed by" in line and line.rstrip().endswith(f"{BIN} [0]")]
    assert needed[:4] == ["libc.so.6", "libm.so.6", "libstdc++.so.6", "libgcc_s.so.1"], needed
