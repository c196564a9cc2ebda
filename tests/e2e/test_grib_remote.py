"""GRIB files by URL (HTTP with nginx, S3 with s3rver): scanned by range through the store interface
in a scan child, each message's byte range read by the workers; the stores equal the ones made from
the same files on disk, and cfgrib's reading of the local files."""
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import grib_files as gf  # noqa: E402
from conftest import store_files  # noqa: E402
from servers import Nginx, S3rver  # noqa: E402
from test_grib import assert_same_as_cfgrib, cache, cfgrib, pressure_levels  # noqa: E402

SKIP = gf.load_oracle()
pytestmark = [pytest.mark.skipif(SKIP is not None, reason=str(SKIP)),
              pytest.mark.skipif(shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(),
                                 reason="nginx-light not installed (scripts/setup.sh --tests)")]
CHUNKS = {"time": 4, "latitude": 19, "longitude": 36}  # whole fields: each message read by one unit


def data_keys(store):
    return {k: v for k, v in store_files(store).items() if k not in (".zattrs", ".zmetadata")}


@pytest.fixture
def www(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    gf.era5_day(root / "day.grib2", 3, hours=6)
    gf.era5_day(root / "day1.grib", 4, hours=4, edition=1)
    pressure_levels(root / "pl.grib2")
    return root


def test_grib_over_http_equals_the_local_file_and_cfgrib(tmp_path, www):
    with Nginx(www, tmp_path / "nginx") as server:
        for name, extra in (("day.grib2", {}), ("day1.grib", {}),
                            ("pl.grib2", {"filter_by_keys": {"shortName": "t"}})):
            local, _ = cache(tmp_path, www / name, name=f"local-{name}.zarr", chunks=CHUNKS, **extra)
            remote, proc = cache(tmp_path, f"{server.url}/{name}", name=f"remote-{name}.zarr",
                                 chunks=CHUNKS, **extra)
            assert data_keys(remote) == data_keys(local), (name, proc.stderr)
            kw = {"filter_by_keys": extra["filter_by_keys"]} if extra else {}
            assert_same_as_cfgrib(remote, cfgrib([www / name], **kw))
        requests = server.requests()
    # Only ranges were asked. The scan reads each message's section 0 (16 bytes) once, then the
    # message once; the workers read the messages again (merging near ranges: the other
    # parameter's messages between two of one variable's are read along).
    day = [r for r in requests if r[0] == "/day.grib2"]
    assert day and all(rng.startswith("bytes=") for _, _, n, rng in day if n > 0), day
    assert sum(1 for _, _, n, _ in day if n == 16) == 12, day
    assert sum(n for _, _, n, _ in day) <= 3 * (www / "day.grib2").stat().st_size, day


def test_grib_over_s3_and_refusals_name_the_url(tmp_path, www):
    with S3rver(tmp_path / "s3") as s3:
        s3.upload_folder("data", www, prefix="g/")
        local, _ = cache(tmp_path, www / "day.grib2", name="local.zarr", chunks=CHUNKS)
        remote, proc = cache(tmp_path, "s3://data/g/day.grib2", name="s3.zarr", chunks=CHUNKS,
                             storage_options=s3.options())
        assert data_keys(remote) == data_keys(local), proc.stderr
        _, proc = cache(tmp_path, "s3://data/g/none.grib2", name="none.zarr", check=4,
                        storage_options=s3.options())
        assert "s3://data/g/none.grib2" in proc.stderr, proc.stderr
    # Bytes after the last message: refused naming the object and where.
    (www / "tail.grib2").write_bytes((www / "day.grib2").read_bytes() + b"\0" * 40)
    with Nginx(www, tmp_path / "nginx") as server:
        _, proc = cache(tmp_path, f"{server.url}/tail.grib2", name="tail.zarr", check=4)
        assert "tail.grib2: message 12 at byte" in proc.stderr, proc.stderr
        _, proc = cache(tmp_path, f"{server.url}/*.grib2", name="glob.zarr", check=4)
        assert "glob" in proc.stderr, proc.stderr
