"""GRIB test files written by ecCodes itself (its Python binding, from its own sample messages) and
by CDO, and cfgrib (the oracle) loaded from the project-local unpacked .debs (scripts/setup.sh)."""
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
CFGRIB_SITE = REPO / ".tools" / "cfgrib" / "files" / "usr" / "lib" / "python3" / "dist-packages"


def load_oracle():
    """Imports cfgrib and eccodes from .tools/cfgrib (Debian's libeccodes0 through findlibs); the
    reason as text when they cannot load."""
    if not CFGRIB_SITE.is_dir():
        return f"cfgrib is not unpacked at {CFGRIB_SITE} (run scripts/setup.sh --tests)"
    if str(CFGRIB_SITE) not in sys.path:
        sys.path.insert(0, str(CFGRIB_SITE))
    try:
        import cfgrib  # noqa: F401
        import eccodes  # noqa: F401
    except Exception as e:  # the library or a dependency missing: say which
        return f"cfgrib cannot load: {e!r}"
    return None


def write_messages(path, messages, sample="regular_ll_sfc_grib2", mode="wb"):
    """Writes one GRIB message per dict of `messages` ({key: value, 'values': array}) cloned from
    ecCodes' sample `sample`; keys are set in the dict's order, values last."""
    import eccodes
    with open(path, mode) as f:
        for m in messages:
            h = eccodes.codes_grib_new_from_samples(m.get("sample", sample))
            try:
                for k, v in m.items():
                    if k in ("values", "sample"):
                        continue
                    if isinstance(v, (list, tuple)):
                        eccodes.codes_set_array(h, k, v)
                    else:
                        eccodes.codes_set(h, k, v)
                if "values" in m:
                    eccodes.codes_set_values(h, np.asarray(m["values"], dtype=float).ravel())
                eccodes.codes_write(h, f)
            finally:
                eccodes.codes_release(h)
    return path


def grid(ni=36, nj=19, lat0=90.0, lon0=0.0, step=10.0):
    return {"Ni": ni, "Nj": nj, "latitudeOfFirstGridPointInDegrees": lat0,
            "longitudeOfFirstGridPointInDegrees": lon0,
            "latitudeOfLastGridPointInDegrees": lat0 - step * (nj - 1),
            "longitudeOfLastGridPointInDegrees": lon0 + step * (ni - 1),
            "iDirectionIncrementInDegrees": step, "jDirectionIncrementInDegrees": step}


def field(rng, nj, ni, base):
    return base + 10 * rng.standard_normal((nj, ni))


def era5_day(path, day, hours=24, params=("2t", "2d"), seed=0, ni=36, nj=19, edition=2):
    """An ERA5-like day: hourly analyses of `params` on a regular lat-lon grid."""
    rng = np.random.default_rng(seed + day)
    sample = "regular_ll_sfc_grib2" if edition == 2 else "regular_ll_sfc_grib1"
    msgs = []
    for h in range(hours):
        for p in params:
            m = {"sample": sample, **grid(ni, nj), "dataDate": 20240100 + day, "dataTime": h * 100,
                 "shortName": p, "values": field(rng, nj, ni, 280.0)}
            msgs.append(m)
    return write_messages(path, msgs)
