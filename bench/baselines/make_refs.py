"""A kerchunk reference set of NetCDF-4 files made by kerchunk itself (0.1.2, vendored in
../shared/vendor, run with Debian's python3 + h5py): SingleHdf5ToZarr per file, MultiZarrToZarr along
time; chunk paths written relative to the output's folder, so the set can be served next to them.

    PYTHONPATH=../shared/vendor /usr/bin/python3 bench/baselines/make_refs.py [--absolute] OUT.json FILE.nc...
"""
import json
import os
import sys

from kerchunk.combine import MultiZarrToZarr
from kerchunk.hdf import SingleHdf5ToZarr


def main(out, files, absolute=False):
    singles = []
    for f in files:
        with open(f, "rb") as h:
            singles.append(SingleHdf5ToZarr(h, os.path.abspath(f), inline_threshold=300).translate())
    combined = MultiZarrToZarr(singles, concat_dims=["time"], identical_dims=["latitude", "longitude"]).translate()
    folder = os.path.dirname(os.path.abspath(out))
    for k, v in ({} if absolute else combined["refs"]).items():
        if isinstance(v, list) and v and isinstance(v[0], str):
            v[0] = os.path.relpath(v[0], folder)
    with open(out, "w") as h:
        json.dump(combined, h)


if __name__ == "__main__":
    absolute = sys.argv[1] == "--absolute"
    args = sys.argv[2:] if absolute else sys.argv[1:]
    main(args[0], args[1:], absolute)
