#!/usr/bin/env python3
"""Issue 34's two-core measurement: the lifecycle run (ERA5 fixture, 4 days, 11 jobs, 128 chunks,
2 local workers) clean, with one worker sleeping 20 s mid-job (ZP_FAULT_SLEEP_ONCE) with
speculative copies, and the same without them (ZP_FAULT_NO_COPIES): "early", in the first job of
the worker that first writes a chunk; "late", at its 60th chunk (ZP_FAULT_AFTER_CHUNKS), in the
last jobs of its share of about 64. Each case 3 times (or argv[1]), median wall seconds; argv[2]
(", copies") keeps only the clean run and the cases naming it."""
import json, os, statistics, subprocess, sys, tempfile, time
from pathlib import Path
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
from conftest import base_config
BIN = str(REPO / "build" / "bin" / "zarr-parallel")
work = Path(tempfile.mkdtemp(prefix="zp-straggle-"))  # a new folder: nothing of anyone's is replaced
SLOW = {"ZP_FAULT_SLEEP_ONCE": "F", "ZP_FAULT_SLEEP_SECONDS": "20"}
LATE = dict(SLOW, ZP_FAULT_AFTER_CHUNKS="60")
cases = {"clean": {}, "slow early, copies": SLOW, "slow early, no copies": dict(SLOW, ZP_FAULT_NO_COPIES="1"),
         "slow late, copies": LATE, "slow late, no copies": dict(LATE, ZP_FAULT_NO_COPIES="1")}
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 3  # runs a case; a second argument: only cases naming it
cases = {k: v for k, v in cases.items() if len(sys.argv) < 3 or k == "clean" or sys.argv[2] in k}
for name, extra in cases.items():
    times = []
    for i in range(RUNS):
        store = work / f"s{len(times)}-{abs(hash(name))}.zarr"
        cfg = work / "c.yaml"
        cfg.write_text(json.dumps(base_config(store, worker_timeout="10:00")))
        env = dict(os.environ, **{k: (str(work / f"flag-{name}-{i}") if v == "F" else v) for k, v in extra.items()})
        t0 = time.monotonic()
        p = subprocess.run([BIN, "cache", str(cfg)], capture_output=True, text=True, env=env)
        times.append(time.monotonic() - t0)
        assert p.returncode == 0, p.stderr
        v = subprocess.run([BIN, "verify", str(cfg)], capture_output=True, text=True)
        assert v.returncode == 0, v.stdout + v.stderr
        copies = p.stderr.count("started a copy")
    print(f"{name}: median {statistics.median(times):.2f} s ({', '.join(f'{t:.2f}' for t in times)}); copies in last run: {copies}", flush=True)
