"""The original package's basic usage, pointed at the fixture's kerchunk reference set instead of
the remote ERA5 aggregation: python3 basic.py [REFS.json] [CACHE_DIR]."""
import sys

from zarr_parallel.assembler import ZarrParallelAssembler

uri = sys.argv[1] if len(sys.argv) > 1 else "../../../shared/fixtures/era5_small/refs.json"
cache_dir = sys.argv[2] if len(sys.argv) > 2 else "zarr_cache"

preprocessors = [
    {"type": "subset", "time": ("2000-01-02 00:00:00", "2000-01-03 23:00:00"),
     "latitude": (90, -2.5), "longitude": (90, 267.5)},
]
chunks = {"time": 24, "latitude": 19, "longitude": 36}

if __name__ == "__main__":
    zp = ZarrParallelAssembler(data_uri=uri, preprocessors=preprocessors,
                               chunks=chunks,
                               engine='kerchunk',
                               variables={'d2m': {}},
                               cache_label='_v1')

    zp.cache(
        cache_dir=cache_dir,
        deploy_mode='dask_distributed',
        simultaneous_worker_limit=2)
    print(zp.cache_store)
