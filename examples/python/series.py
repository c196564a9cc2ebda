"""The basic example run in this process (deploy_mode='series'), with a variable renamed and
attributes added: python3 series.py [REFS.json] [CACHE_DIR]."""
import sys

from zarr_parallel import ZarrParallelAssembler

uri = sys.argv[1] if len(sys.argv) > 1 else "../../../shared/fixtures/era5_small/refs.json"
cache_dir = sys.argv[2] if len(sys.argv) > 2 else "zarr_cache"

zp = ZarrParallelAssembler(data_uri=uri,
                           preprocessors=[{"type": "subset", "time": ("2000-01-02", "2000-01-03")}],
                           chunks={"time": 48, "latitude": 19, "longitude": 72},
                           variables={"d2m": {}, "t2m": [{"type": "rename", "new_name": "air_temperature"}]},
                           add_attrs={"project": "FRAME-FM"},
                           cache_label="_series")
zp.cache(cache_dir=cache_dir, deploy_mode="series")
print(zp.cache_store)
