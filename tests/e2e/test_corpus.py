"""The malformed-input corpus (tests/corpus, made by make_corpus.py): every input gives its
documented exit code and a one-line message naming what is wrong — never a crash, a hang, an
internal error or a store."""
import json
import subprocess

import pytest

from conftest import BIN, ERA5, REPO, need_fixtures

CORPUS = REPO / "tests" / "corpus"
EXPECTED = json.loads((CORPUS / "expected.json").read_text())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_malformed_input(tmp_path, name):
    need_fixtures()
    path = CORPUS / name
    store = tmp_path / "out.zarr"
    if name.startswith("configs/"):
        # A copy beside the store, so that "cache_store: out.zarr" lands in tmp_path.
        cfg = tmp_path / path.name
        cfg.write_text(path.read_text().replace("../../../../shared/fixtures", str(ERA5.parent)))
        cmd = [str(BIN), "cache", str(cfg), "--yes"]
    else:
        cfg = tmp_path / "c.yaml"
        engine = "kerchunk" if name.startswith("kerchunk/") else "netcdf"
        cfg.write_text(json.dumps({"data_uri": str(path), "engine": engine, "cache_store": str(store),
                                   "deploy_mode": "series", "recommend_changes": False}))
        cmd = [str(BIN), "cache", str(cfg)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == EXPECTED[name], (proc.returncode, proc.stderr)
    lines = [l for l in proc.stderr.splitlines() if l.startswith("zarr-parallel: error:")]
    assert len(lines) >= 1 and len(lines[0]) > 30, proc.stderr
    assert "internal error" not in proc.stderr
    assert not (store / ".zarr-parallel" / "complete.json").exists()
