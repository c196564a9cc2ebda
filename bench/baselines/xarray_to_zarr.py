"""Baseline: the same workload with xarray + dask (threaded scheduler, or a dask.distributed
LocalCluster of 2 workers x 1 thread x 2GB, the original package's deploy mode)."""
import json
import shutil
import sys

import xarray as xr


def run(spec):
    chunks = dict(zip(("time", "latitude", "longitude"), spec["source_chunks"]))
    if spec.get("reference_url"):  # W7: a kerchunk set over HTTP through fsspec (aiohttp)
        ds = xr.open_dataset("reference://", engine="zarr", chunks=chunks,
                             backend_kwargs={"consolidated": False,
                                             "storage_options": {"fo": spec["reference_url"],
                                                                 "remote_protocol": "http"}})[["d2m"]]
    else:
        ds = xr.open_mfdataset(spec["files"], chunks=chunks, combine="nested", concat_dim="time", data_vars="minimal",
                               coords="minimal", compat="override")[["d2m"]]
    if spec.get("sel"):
        ds = ds.sel(**{k: slice(*v) for k, v in spec["sel"].items()})
    if spec.get("transform") == "tiled":  # the original package's path: xarray, then to_zarr
        pre = spec["pre"]
        ds = ds.isel(latitude=slice(None, None, -1)).sel(**{k: slice(*v) for k, v in pre[1].items() if k != "type"})
        sizes = {k: v for k, v in pre[2].items() if k != "type"}
        c = ds.coarsen(sizes, boundary="pad").construct({d: (f"{d}_coarse", f"{d}_fine") for d in sizes})
        ds = c.stack(batch_dim=[f"{d}_coarse" for d in ds.d2m.dims if d in sizes]).transpose("batch_dim", ...)
        ds = ds.reset_index("batch_dim").chunk({"batch_dim": 1})
    elif spec.get("transform") == "roll":
        box = spec["pre"][1]
        with xr.set_options(keep_attrs=True):
            ds = ds.assign_coords(longitude=((ds.longitude + 180) % 360) - 180)
        ds = ds.sortby("longitude").sel(longitude=slice(*box["longitude"]), latitude=slice(*box["latitude"]))
    if spec.get("chunks"):
        ds = ds.chunk(dict(zip(("time", "latitude", "longitude"), spec["chunks"])))
    for v in ds.variables.values():
        v.encoding.pop("chunks", None)
        v.encoding.pop("preferred_chunks", None)
    shutil.rmtree(spec["out"], ignore_errors=True)
    ds.to_zarr(spec["out"], consolidated=True, mode="w")


if __name__ == "__main__":
    spec = json.loads(sys.argv[1])
    if spec.get("distributed"):
        from dask.distributed import Client, LocalCluster
        import logging
        logging.getLogger("distributed").setLevel(logging.ERROR)
        with LocalCluster(n_workers=2, threads_per_worker=1, memory_limit="2GB", dashboard_address=":0") as cluster, \
                Client(cluster):
            run(spec)
    else:
        run(spec)
