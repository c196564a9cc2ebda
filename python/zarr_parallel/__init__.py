"""zarr_parallel: cache gridded archives (NetCDF/HDF5, kerchunk, Zarr) into rechunked Zarr stores,
in parallel, with every worker's memory bounded. The C++ engine does the data work; this package
keeps the original Python package's API (ZarrParallelAssembler)."""
import os as _os
from pathlib import Path as _Path

# An installed package carries its engine binary (workers run it); a build tree's module knows
# where the build put it. Set before the engine module loads, which reads it.
_packaged = _Path(__file__).resolve().parent / "bin" / "zarr-parallel"
if _packaged.exists():
    _os.environ.setdefault("ZP_WORKER_EXE", str(_packaged))

from ._zarr_parallel import __version__  # noqa: E402
from .assembler import ZarrParallelAssembler  # noqa: E402


def refs(sources, out, concat_dim=None, inline_threshold=500, relative=False, group=None):
    """Writes a kerchunk reference set (version 1) of NetCDF-4/HDF5 files (a path, a glob, or a list
    of them, joined along `concat_dim`) or a Zarr store to `out`, as `zarr-parallel refs` does.
    Returns a summary dict (variables, files, chunks, inline)."""
    import json
    import os
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    from . import _zarr_parallel
    return json.loads(_zarr_parallel.refs([os.fspath(s) for s in sources], os.fspath(out), concat_dim or "",
                                          int(inline_threshold), bool(relative), group or ""))


__all__ = ["ZarrParallelAssembler", "refs", "__version__"]
