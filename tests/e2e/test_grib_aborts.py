"""GRIB messages on which ecCodes itself aborts (an assertion: SIGABRT), found by fuzz_grib and kept
in tests/corpus/grib_aborts. The scan runs ecCodes in a child process (`scan-grib`), so `cache` and
`inspect` end with the exit code of bad source data (4) and one message naming the file and the
message, instead of dying with the library (exit 134, a core file, nothing said)."""
import json
import shutil
import subprocess

import pytest

import grib_files as gf
from conftest import BIN, REPO

ABORTS = sorted((REPO / "tests" / "corpus" / "grib_aborts").glob("*.grib"))
# Under AddressSanitizer a SEGV in the scan child (abort-3.grib) is ASan's to report: the child
# exits 1 instead of dying of the signal, so only the file is named (still exit 4, one line).
SANITIZED = BIN.exists() and b"__asan_init" in BIN.read_bytes()


def where(name):
    return [name.split(":")[0]] if SANITIZED else [name]


def run(tmp_path, *args):
    """The binary in `tmp_path` (where a crash would leave its core file)."""
    return subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True, cwd=tmp_path,
                          timeout=300)


def cache(tmp_path, data_uri):
    store = tmp_path / "out.zarr"
    cfg = tmp_path / "config.yaml"
    cfg.write_text(json.dumps({"data_uri": str(data_uri), "cache_store": str(store),
                               "recommend_changes": False}))
    return store, run(tmp_path, "cache", cfg, "--yes")


def assert_refused(proc, tmp_path, names):
    """Exit 4, one error line naming `names`, no traceback, no core file, no store marked done."""
    assert proc.returncode == 4, f"exit {proc.returncode}\n{proc.stderr}"
    errors = [line for line in proc.stderr.splitlines() if line.startswith("zarr-parallel: error:")]
    assert len(errors) == 1, proc.stderr
    assert all(n in errors[0] for n in names), proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("core")]
    assert not any(p.name == "complete.json" for p in tmp_path.rglob("*"))


def test_the_corpus_is_there():
    assert len(ABORTS) >= 2, ABORTS


@pytest.mark.parametrize("sample", ABORTS, ids=lambda p: p.name)
def test_cache_and_inspect_of_a_message_ecCodes_aborts_on_exit_4_naming_it(tmp_path, sample):
    src = tmp_path / "bad.grib"
    shutil.copy(sample, src)
    _, proc = cache(tmp_path, src)
    assert_refused(proc, tmp_path, where("bad.grib: message 0 at byte 0"))
    proc = run(tmp_path, "inspect", src)
    assert_refused(proc, tmp_path, where("bad.grib: message 0 at byte 0"))


def test_abort_in_the_second_file_of_a_glob_names_that_file_and_message(tmp_path):
    skip = gf.load_oracle()
    if skip:
        pytest.skip(skip)
    gf.era5_day(tmp_path / "day_1.grib2", 1, hours=2)
    good = (tmp_path / "day_1.grib2").read_bytes()
    # The second day: a good message, then the one ecCodes aborts on.
    (tmp_path / "day_2.grib2").write_bytes(good[: len(good) // 4] + (REPO / "tests" / "corpus" /
                                                                      "grib_aborts" / "abort-2.grib").read_bytes())
    _, proc = cache(tmp_path, tmp_path / "day_*.grib2")
    assert_refused(proc, tmp_path, ["day_2.grib2: message 1 at byte", "ecCodes crashed"])
