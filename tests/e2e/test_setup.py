"""scripts/setup.sh against a stand-in apt-get: it never removes a package, and the quick start's
setup installs only what building and running need (the test suite's world is `--tests`)."""
import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# What a machine with a GRIB stack and libcurl4-gnutls-dev would get from apt-get's simulation.
REMOVING = """NOTE: This is only a simulation!
Remv libcurl4-gnutls-dev [7.88.1-10+deb12u5]
Remv libgrib-api-dev [1.28.1-1]
Inst libcurl4-openssl-dev (7.88.1-10+deb12u5 Debian:12.5/stable [amd64])
Conf libcurl4-openssl-dev (7.88.1-10+deb12u5 Debian:12.5/stable [amd64])
"""
CLEAN = """NOTE: This is only a simulation!
Inst libcurl4-openssl-dev (7.88.1-10+deb12u5 Debian:12.5/stable [amd64])
Conf libcurl4-openssl-dev (7.88.1-10+deb12u5 Debian:12.5/stable [amd64])
"""


def fake_world(tmp_path, simulation, installed=()):
    """A copy of setup.sh and a PATH whose apt-get, dpkg-query, npm and sudo only log their calls."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "setup.sh", repo / "scripts" / "setup.sh")
    samples = repo / ".tools" / "debian-samples"  # the sweep's files, as if already unpacked
    samples.mkdir(parents=True)
    (samples / ".complete").touch()
    cfgrib = repo / ".tools" / "cfgrib"  # the GRIB oracle's .debs, as if already unpacked
    cfgrib.mkdir(parents=True)
    (cfgrib / ".complete").touch()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    (tmp_path / "simulation.txt").write_text(simulation)
    (tmp_path / "installed.txt").write_text("\n".join(installed) + "\n")
    scripts = {
        "apt-get": f"""echo "apt-get $*" >> {log}
for a in "$@"; do [ "$a" = "-s" ] && {{ cat {tmp_path}/simulation.txt; exit 0; }}; done
exit 0""",
        "dpkg-query": f"""p="${{@: -1}}"
grep -qx "$p" {tmp_path}/installed.txt && {{ printf 'install ok installed'; exit 0; }}
exit 1""",
        "npm": f'echo "npm $*" >> {log}',
        "sudo": '"$@"',
    }
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text("#!/bin/bash\n" + body + "\n")
        path.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
    return repo, env, log


def run_setup(repo, env, *args):
    return subprocess.run(["bash", str(repo / "scripts" / "setup.sh"), *args], env=env, capture_output=True,
                          text=True, timeout=60)


def installs(log):
    """apt-get calls that would change the system (not the simulation, not the index update)."""
    lines = log.read_text().splitlines() if log.exists() else []
    return [c for c in lines if c.startswith("apt-get") and " install" in c and " -s " not in c]


def test_a_conflict_stops_setup_naming_it_and_nothing_is_removed(tmp_path):
    repo, env, log = fake_world(tmp_path, REMOVING)
    proc = run_setup(repo, env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "libcurl4-gnutls-dev" in proc.stderr and "libgrib-api-dev" in proc.stderr, proc.stderr
    assert "REMOVE" in proc.stderr and "nothing installed or removed" in proc.stderr
    assert installs(log) == [], log.read_text()
    assert any(" -s install " in c for c in log.read_text().splitlines())  # it did simulate


def test_a_clean_simulation_installs_and_apt_may_not_remove_anything(tmp_path):
    repo, env, log = fake_world(tmp_path, CLEAN)
    proc = run_setup(repo, env)
    assert proc.returncode == 0, proc.stderr
    calls = installs(log)
    assert len(calls) == 1 and "--no-remove" in calls[0], calls


def test_quickstart_setup_installs_only_what_building_and_running_need(tmp_path):
    repo, env, log = fake_world(tmp_path, CLEAN)
    assert run_setup(repo, env).returncode == 0
    (call,) = installs(log)
    wanted = set(call.split())
    assert {"cmake", "libhdf5-dev", "libnetcdf-dev", "pybind11-dev", "python3-xarray"} <= wanted
    test_world = {"slurmctld", "slurmd", "munge", "nginx-light", "valgrind", "clang", "cdo", "nco",
                  "libncarg-data", "npm"}
    assert not wanted & test_world, wanted & test_world
    assert "npm" not in log.read_text()  # no npm servers either
    log.unlink()
    assert run_setup(repo, env, "--tests").returncode == 0
    (call,) = installs(log)
    assert test_world - {"npm"} <= set(call.split())
    assert "npm install" in log.read_text()
    log.unlink()  # bench/setup.sh's extra packages go the same way, simulated first
    assert run_setup(repo, env, "--tests", "gdal-bin").returncode == 0
    (call,) = installs(log)
    assert "gdal-bin" in call.split() and "--no-remove" in call


def test_setup_with_everything_present_touches_nothing(tmp_path):
    text = (REPO / "scripts" / "setup.sh").read_text()
    names = set()
    for block in ("BUILD_AND_RUN=(", "TESTS_ONLY=("):
        names |= set(text.split(block, 1)[1].split(")", 1)[0].split())
    repo, env, log = fake_world(tmp_path, REMOVING, installed=sorted(names))
    proc = run_setup(repo, env)
    assert proc.returncode == 0 and "packages present" in proc.stdout, proc.stderr
    assert not log.exists() or "apt-get" not in log.read_text()


def test_a_machine_with_libcurl_gnutls_keeps_it(tmp_path):
    """The GRIB stack (libeccodes, cfgrib) brings libcurl4-gnutls-dev; it builds us as well as
    libcurl4-openssl-dev does, so setup asks for nothing that would replace it."""
    repo, env, log = fake_world(tmp_path, CLEAN, installed=["libcurl4-gnutls-dev"])
    proc = run_setup(repo, env)
    assert proc.returncode == 0, proc.stderr
    asked = " ".join(c for c in log.read_text().splitlines() if c.startswith("apt-get") and "install" in c)
    assert "libcurl4-openssl-dev" not in asked, asked
    assert "libhdf5-dev" in asked, asked  # the rest is still asked for
