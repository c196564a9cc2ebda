"""Hostile-review findings on the command line side (session 16): numbers out of range in the
config, NUL inside config strings, terminal escapes from sources and stores, and forged job and
heartbeat records in a store's side folder. Each test runs the binary (or the Python module of the
same build) on the reviewer's input and asserts the refusal or the bounded, escaped output."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest import BIN, SAMPLE_BIN  # noqa: E402

MODULE_DIR = BIN.parent.parent / "python"  # the build's Python module, beside its binary


def run(*args, cwd=None, timeout=120):
    return subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, errors="replace")


def sample(folder, files=1):
    subprocess.run([str(SAMPLE_BIN), "--out", str(folder), "--prefix", "d_", "--files", str(files),
                    "--steps", "4", "--lat", "9", "--lon", "12"], check=True, capture_output=True)
    return folder


def python_module(code, cwd):
    """Runs `code` with this build's zarr_parallel module; skipped if the build has none."""
    if not (MODULE_DIR / "zarr_parallel").exists():
        pytest.skip(f"no Python module in {MODULE_DIR}")
    env = dict(os.environ, PYTHONPATH=str(MODULE_DIR), PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=120)


# 1. Sizes and durations beyond range: exit 2 naming the key and the range, nothing written.

@pytest.mark.parametrize("key,value,allowed", [
    ("memory_limit", "20000000000GB", "1 B to 1 PiB"),
    ("memory_limit", "1e300", "1 B to 1 PiB"),
    ("worker_timeout", "99999999999999999999:00", "1 second to 366 days"),
    ("worker_timeout", "99999999999999999999-00:00", "1 second to 366 days"),
])
def test_numbers_out_of_range_are_config_errors(tmp_path, key, value, allowed):
    sample(tmp_path / "data")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(json.dumps({"data_uri": "data/d_*.nc", "cache_store": "t.zarr",
                               "recommend_changes": False, key: value}))
    for command in ("plan", "cache"):
        proc = run(command, cfg, "--yes" if command == "cache" else "--json", cwd=tmp_path)
        assert proc.returncode == 2, (command, proc.returncode, proc.stdout, proc.stderr)
        assert f"config key '{key}'" in proc.stderr and allowed in proc.stderr, proc.stderr
    assert not (tmp_path / "t.zarr").exists()


def test_python_worker_timeout_out_of_range_is_value_error(tmp_path):
    sample(tmp_path / "data")
    proc = python_module(
        "import zarr_parallel as zp\n"
        "try:\n"
        "    zp.ZarrParallelAssembler('data/d_*.nc').plan(cache_store='w.zarr',\n"
        "                                                  worker_timeout='99999999999999999999:00')\n"
        "except ValueError as e:\n"
        "    print('ValueError', e)\n", tmp_path)
    assert "ValueError config key 'worker_timeout'" in proc.stdout, (proc.stdout, proc.stderr)


# 2. NUL inside a config string: refused naming the key; the file before the NUL is never opened.

@pytest.mark.parametrize("text", [
    '{"data_uri": "data/other.nc\\u0000/allowed/dataset", "cache_store": "o.zarr"}',
    'data_uri: "data/other.nc\\0/allowed/dataset"\ncache_store: o.zarr\n',
])
def test_nul_in_config_string_is_refused(tmp_path, text):
    sample(tmp_path / "data")
    (next((tmp_path / "data").glob("*.nc"))).rename(tmp_path / "data" / "other.nc")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text + ("\nrecommend_changes: false\n" if not text.startswith("{") else ""))
    proc = run("plan", cfg, cwd=tmp_path)
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "config key 'data_uri': contains a NUL character" in proc.stderr, proc.stderr


def test_nul_in_python_keyword_is_refused(tmp_path):
    sample(tmp_path / "data")
    (next((tmp_path / "data").glob("*.nc"))).rename(tmp_path / "data" / "other.nc")
    proc = python_module(
        "import zarr_parallel as zp\n"
        "for call in (lambda: zp.ZarrParallelAssembler('data/other.nc\\0/allowed/dataset').inspect(),\n"
        "             lambda: zp.ZarrParallelAssembler('data/other.nc').plan(cache_store='o.zarr\\0x')):\n"
        "    try:\n"
        "        call(); print('accepted')\n"
        "    except ValueError as e:\n"
        "        print('ValueError', e)\n", tmp_path)
    lines = proc.stdout.splitlines()
    assert len(lines) == 2, (proc.stdout, proc.stderr)
    assert lines[0].startswith("ValueError config key 'data_uri': contains a NUL"), lines
    assert lines[1].startswith("ValueError config key 'cache_store': contains a NUL"), lines


# 3. Control characters from sources and stores reach the terminal escaped, never raw.

ESCAPES = "\x1b]0;PWNED\x07\x1b[2J\x1b[31mx"


def hostile_zarr_source(folder):
    """A Zarr v2 group whose one array's name carries terminal escapes (zarr-python reads it)."""
    array = folder / ESCAPES
    array.mkdir(parents=True)
    (folder / ".zgroup").write_text('{"zarr_format":2}')
    (array / ".zattrs").write_text('{"_ARRAY_DIMENSIONS":["t"]}')
    (array / ".zarray").write_text('{"zarr_format":2,"shape":[4],"chunks":[4],"dtype":"<f8",'
                                   '"compressor":null,"fill_value":0,"filters":null,"order":"C"}')
    import zarr
    assert ESCAPES in list(zarr.open_group(str(folder), mode="r").array_keys())
    return folder


def test_inspect_and_errors_escape_source_names(tmp_path):
    """A source array name full of terminal escapes: refused when the source is described (exit 4,
    review 16 finding 5), and the message shows the name escaped, never raw."""
    hostile_zarr_source(tmp_path / "src.zarr")
    proc = run("inspect", "src.zarr", cwd=tmp_path)
    assert proc.returncode == 4, proc.stderr
    assert "\x1b" not in proc.stderr and "\x07" not in proc.stderr and "PWNED" in proc.stderr, proc.stderr
    (tmp_path / "c.yaml").write_text("data_uri: src.zarr\ncache_store: o.zarr\nrecommend_changes: false\n")
    proc = run("cache", "c.yaml", "--yes", cwd=tmp_path)
    assert proc.returncode == 4, (proc.returncode, proc.stderr)
    assert "\x1b" not in proc.stderr and "PWNED" in proc.stderr, proc.stderr
    assert not (tmp_path / "o.zarr").exists()


def test_status_escapes_heartbeat_fields(tmp_path):
    sample(tmp_path / "data")
    (tmp_path / "c.yaml").write_text("data_uri: data/d_*.nc\ncache_store: out.zarr\n"
                                     "recommend_changes: false\ndeploy_mode: series\n")
    assert run("cache", "c.yaml", "--yes", cwd=tmp_path).returncode == 0
    beat = tmp_path / "out.zarr/.zarr-parallel/heartbeats/series.json"
    record = json.loads(beat.read_text())
    record["worker"] = "\x1b]0;PWNED\x07\x1b[2J\u009b31m"
    beat.write_text(json.dumps(record))
    proc = run("status", "out.zarr", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout and "\u009b" not in proc.stdout, proc.stdout
    assert "\\x1b]0;PWNED\\x07\\x1b[2J\\u009b31m" in proc.stdout, proc.stdout
    as_json = json.loads(run("status", "out.zarr", "--json", cwd=tmp_path).stdout)
    assert record["worker"] in [b.get("worker") for b in as_json["heartbeats"]]


# 4. status bounds what it believes of a store's side folder: done markers of the plan's job ids
# only, heartbeats of the plan's jobs only, a bounded number of lines.

def test_status_ignores_forged_records_and_bounds_its_lines(tmp_path):
    sample(tmp_path / "data", files=2)
    (tmp_path / "c.yaml").write_text("data_uri: data/d_*.nc\ncache_store: out.zarr\n"
                                     "recommend_changes: false\ndeploy_mode: series\n")
    assert run("cache", "c.yaml", "--yes", cwd=tmp_path).returncode == 0
    side = tmp_path / "out.zarr/.zarr-parallel"
    jobs = json.loads(run("status", "out.zarr", "--json", cwd=tmp_path).stdout)["jobs_total"]
    for i in range(jobs, 20000):
        (side / f"jobs/{i}.done").write_text("{}")
    beat = '{"pid":%d,"host":"vm","job":%d,"time":1796658912,"chunks_done":0,"chunks":1}'
    for i in range(3000):  # forged: jobs of the plan (job 0) and jobs it does not have
        (side / f"heartbeats/w{i}.json").write_text(beat % (i + 100000, 0 if i % 2 else 10**6 + i))
    proc = run("status", "out.zarr", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert f"jobs       {jobs} / {jobs} done" in lines, proc.stdout[:2000]
    assert len(lines) < 80, (len(lines), lines[:10])
    assert any("and 1451 more" in line for line in lines), lines[-5:]  # 1501 beats, 50 shown
    as_json = json.loads(run("status", "out.zarr", "--json", cwd=tmp_path).stdout)
    assert as_json["jobs_done"] == jobs
    assert all(b.get("job") in (None, 0) or b.get("job") < jobs for b in as_json["heartbeats"])
    assert len(as_json["heartbeats"]) == 1501  # the series worker's own and the 1500 of job 0
