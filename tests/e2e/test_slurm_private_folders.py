"""SLURM's files outside our control (review 18, findings 1 and 2): slurmstepd opens a task's
`--output` as the submitting user and follows symbolic links, sbatch reads the script we wrote, and
an S3 run keeps its submissions and secrets in its scratch folder. Another user (uid 65534, via
setpriv, as the reproducers do) who could write those folders must meet a refusal, and the victim's
file stays untouched."""
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import need_fixtures, run_cache
from servers import S3rver
from test_s3_output import BUCKET, s3_config
from test_slurm import config, fake_slurm, slurm  # noqa: F401  (slurm: the real SLURM fixture)

PRECIOUS = "the victim's precious data\n"


def attacker(cmd):
    subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", cmd],
                   check=True, env={"PATH": "/usr/bin:/bin"}, timeout=60)


@pytest.fixture
def shared():
    """A folder another user can reach (pytest's own are 0700), removed after."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to act as another user")
    folder = Path(tempfile.mkdtemp(prefix="zp-shared-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def victim_file(tmp_path):
    victim = tmp_path / "victim-precious.txt"
    victim.write_text(PRECIOUS)
    victim.chmod(0o600)
    return victim


def test_links_planted_in_a_shared_store_log_folder_are_refused(slurm, tmp_path, shared):  # noqa: F811
    """Finding 2 with a real SLURM: a submit-only run whose tasks are cancelled, the store's logs
    folder shared (mode 0777), another user plants links for the next job ids to a file of the
    victim's; the resume makes the folder private again (it is ours), finds the links and is refused
    (exit 5, naming the folder); the file is untouched. Refused again with the folder 0755. Without the fix the resume exits
    0 and slurmstepd writes a task's output into the victim's file."""
    need_fixtures()
    store = shared / "shared.zarr"
    victim = victim_file(tmp_path)
    held = {"partition": "debug", "extra": ["--hold"]}
    run_cache(tmp_path, config(store, await_completion=False, slurm=held), env=slurm, check=0)
    subs = json.loads((store / ".zarr-parallel/slurm/submissions.json").read_text())
    for s in subs:
        subprocess.run(["scancel", s["id"]], env=slurm, check=True, timeout=30)
    logs = store / ".zarr-parallel" / "logs"
    logs.chmod(0o777)  # the store is shared
    last = max(int(s["id"]) for s in subs)
    attacker(" ".join(f"ln -s {victim} {logs}/slurm-{j}_{t}.log;" for j in range(last + 1, last + 40)
                      for t in range(4)))
    proc = run_cache(tmp_path, config(store, resume=True), env=slurm)
    assert victim.read_text() == PRECIOUS, proc.stderr
    assert proc.returncode == 5, proc.stderr
    # Ours, so made private again (said), and then the planted links are found.
    assert f"made {logs} private (mode 777 -> 700)" in proc.stderr, proc.stderr
    assert str(logs) in proc.stderr and "is not a file of ours" in proc.stderr, proc.stderr
    assert logs.stat().st_mode & 0o777 == 0o700
    logs.chmod(0o755)
    proc = run_cache(tmp_path, config(store, resume=True), env=slurm)
    assert proc.returncode == 5 and "is not a file of ours" in proc.stderr, proc.stderr
    assert victim.read_text() == PRECIOUS
    # The owner removes what was planted: the resume finishes the store.
    for link in logs.glob("slurm-*.log"):
        if link.is_symlink():
            link.unlink()
    run_cache(tmp_path, config(store, resume=True), env=slurm, check=0)
    assert (store / ".zarr-parallel" / "complete.json").exists()
    assert victim.read_text() == PRECIOUS


def scratch_run_folder(s3, scratch, prefix):
    sid = json.loads(s3.client().get_object(Bucket=BUCKET, Key=f"{prefix}/.zarr-parallel/store.json")
                     ["Body"].read())["store_id"]
    url = f"s3://{BUCKET}/{prefix}"
    return scratch / ("s3-" + hashlib.sha256(f"{url}\n{sid}".encode()).hexdigest()[:16])


@pytest.mark.parametrize("planted", ["folder", "link"])
def test_a_scratch_folder_made_by_another_user_is_refused(tmp_path, shared, planted):
    """Finding 1 (fake SLURM on PATH): in a shared scratch area (sticky, 1777) another user makes
    the S3 store's run folder first (its name follows from the URL and the store id in the bucket),
    or a link by that name to a folder of theirs, with a submissions.json naming job 777. The
    victim's SLURM run refuses it (exit 2, slurm.scratch) before any SLURM command: no squeue of
    777, no script or secrets folder in it. Without the fix it exits 0, adopts job 777 and leaves
    its sbatch script and secrets in the other user's folder."""
    need_fixtures()
    env, log = fake_slurm(tmp_path)
    scratch = shared / "scratch"
    scratch.mkdir()
    scratch.chmod(0o1777)
    with S3rver(tmp_path / "s3") as s3:
        s3.client().create_bucket(Bucket=BUCKET)
        prefix = "team/era5.zarr"
        run_cache(tmp_path, s3_config(s3, prefix, variables=["d2m"]), check=0)  # the next run rebuilds
        run_dir = scratch_run_folder(s3, scratch, prefix)
        theirs = scratch / "theirs" if planted == "link" else run_dir
        attacker(f"mkdir -p {theirs}/.zarr-parallel/slurm && chmod -R 777 {theirs} && "
                 f"echo '[{{\"id\": \"777\", \"tasks\": 2}}]' > {theirs}/.zarr-parallel/slurm/submissions.json"
                 + (f" && ln -s {theirs} {run_dir}" if planted == "link" else ""))
        cfg = s3_config(s3, prefix, deploy_mode="slurm", overwrite=True, await_completion=False,
                        simultaneous_worker_limit=4, slurm={"partition": "debug", "scratch": str(scratch)})
        proc = run_cache(tmp_path, cfg, env=env)
    assert proc.returncode == 2, proc.stderr
    assert "slurm.scratch" in proc.stderr and str(run_dir) in proc.stderr, proc.stderr
    assert not log.exists() or not any(c[0] in ("sbatch", "squeue") for c in map(json.loads, log.read_text().splitlines()))
    mine = [p for p in theirs.rglob("*") if p.lstat().st_uid != 65534]
    assert mine == [], mine
