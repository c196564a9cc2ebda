"""A run's start (issue 32, W0's fixed cost): the coordinator writes the arrays' metadata documents
as one batch, each renamed into place with its write-back started, and waits for the device once
for all of them, instead of one flush per document before its rename. Every document is still
flushed before the first worker starts, and the store reads as the source does."""
import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import BIN, ERA5, assert_matches, base_config, need_fixtures, open_kerchunk, traced_env

METADATA = {".zarray", ".zattrs", ".zgroup"}


def traced_start(tmp_path, store):
    """The coordinator's renames and flushes up to its first fork, under strace (no -f)."""
    events = coordinator_events(tmp_path, store, num_jobs=2)
    return events[:events.index(("fork", ""))] if ("fork", "") in events else events


@pytest.mark.skipif(not shutil.which("strace"), reason="needs strace")
def test_metadata_documents_are_flushed_together_before_the_workers(tmp_path):
    need_fixtures()
    store = tmp_path / "out.zarr"
    events = traced_start(tmp_path, store)
    renames = [i for i, (kind, name) in enumerate(events) if kind == "rename" and name in METADATA]
    assert len(renames) >= 5, events  # the group's two documents and the arrays' (d2m and 3 coordinates)
    # No flush between the first and the last document's rename: their flushes are awaited together
    # (before: a file flush ahead of each rename).
    between = [e for e in events[renames[0]:renames[-1]] if e[0] == "flush"]
    assert between == [], events
    # ... and still before any worker starts: one file flush a document at least, after the last rename.
    after = [e for e in events[renames[-1]:] if e == ("flush", "fdatasync")]
    assert len(after) >= len(renames), events
    assert_matches(store, open_kerchunk(ERA5 / "refs.json").sel(time=slice("2000-01-01 00:00", "2000-01-04 23:00")))


def coordinator_events(tmp_path, store, **config):
    """The coordinator's renames, flushes and forks (not threads) over a whole run, under strace
    (no -f); `config`: keys beside base_config's (by default 2 jobs and stats)."""
    cfg = tmp_path / "cfg_all.yaml"
    cfg.write_text(json.dumps(base_config(store, **(config or {"num_jobs": 2, "generate_stats": True}))))
    trace = tmp_path / "all.trace"
    proc = subprocess.run(["strace", "-qq", "-e", "trace=renameat,renameat2,rename,fdatasync,fsync,clone,clone3",
                           "-o", str(trace), str(BIN), "cache", str(cfg)], capture_output=True, text=True,
                          timeout=300, env=traced_env())
    assert proc.returncode == 0, proc.stderr
    events = []
    for line in trace.read_text().splitlines():
        m = re.match(r'rename\w*\(.*"([^"]+)"\) = 0', line)
        if line.startswith(("clone(", "clone3(")) and "CLONE_THREAD" not in line:
            events.append(("fork", ""))
        elif m:
            events.append(("rename", os.path.basename(m.group(1))))
        elif line.startswith(("fdatasync(", "fsync(")):
            events.append(("flush", line.split("(")[0]))
    return events


def renamed_together(events, names):
    """Indexes of the renames of `names` when no flush comes between the first and the last of them
    and each is flushed (fdatasync) after the last one, before the next fork; else fails."""
    at = [i for i, (kind, name) in enumerate(events) if kind == "rename" and name in names]
    assert {events[i][1] for i in at} == set(names), events
    assert [e for e in events[at[0]:at[-1]] if e[0] == "flush"] == [], events
    upto = next((i for i in range(at[-1], len(events)) if events[i][0] == "fork"), len(events))
    assert len([e for e in events[at[-1]:upto] if e == ("flush", "fdatasync")]) >= len(at), events
    return at


@pytest.mark.skipif(not shutil.which("strace"), reason="needs strace")
def test_state_plan_and_the_last_documents_are_flushed_in_batches(tmp_path):
    """A new store's state.json, sources.json and plan.json are flushed together before any worker
    starts; at the end .zmetadata and stats.json together, both before complete.json is written."""
    need_fixtures()
    store = tmp_path / "batched.zarr"
    events = coordinator_events(tmp_path, store)
    first_fork = events.index(("fork", ""))
    start = renamed_together(events, ["state.json", "sources.json", "plan.json"])
    assert start[-1] < first_fork
    end = renamed_together(events, [".zmetadata", "stats.json"])
    complete = events.index(("rename", "complete.json"))
    assert end[0] > first_fork and complete > end[-1]
    assert [e for e in events[end[-1]:complete] if e == ("flush", "fdatasync")], events
    assert json.loads((store / ".zarr-parallel" / "stats.json").read_text())["jobs"] == 2
    assert_matches(store, open_kerchunk(ERA5 / "refs.json").sel(time=slice("2000-01-01 00:00", "2000-01-04 23:00")))
