"""zarr_parallel: cache gridded archives (NetCDF/HDF5, kerchunk, Zarr) into rechunked Zarr stores,
in parallel, with every worker's memory bounded. The C++ engine does the data work; this package
keeps the original Python package's API (ZarrParallelAssembler)."""
from ._zarr_parallel import __version__
from .assembler import ZarrParallelAssembler

__all__ = ["ZarrParallelAssembler", "__version__"]
