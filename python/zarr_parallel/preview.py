"""A preview of a cache: the Dataset a config would write, with its selection and transforms, as a
lazy xarray Dataset read through the engine (nothing is written; each chunk is assembled from the
source when xarray asks for its values, as a job would write it).

`xr.open_dataset("config.yaml", engine="zarr_parallel")` opens a config file this way (the
package registers ZarrParallelBackendEntrypoint as an xarray backend); ZarrParallelAssembler's
preview() (alias _transform_ds(), the original's name) does it for its arguments."""
import itertools
import json
import os
import shutil
import tempfile

import numpy as np
import xarray as xr
from xarray.backends import BackendArray, BackendEntrypoint
from xarray.core import indexing

from . import _zarr_parallel as _engine


class _OutputArray(BackendArray):
    """One output array of the plan, read chunk by chunk through the engine."""

    def __init__(self, source, name, shape, chunks, dtype, filters=None):
        self.source, self.name = source, name
        self.shape, self.chunks, self.dtype = tuple(shape), tuple(chunks), np.dtype(dtype)
        # Text arrays (vlen-utf8 / vlen-bytes in the store) come from the engine as fixed-width
        # bytes, zero-padded to the longest item, as numpy holds 'S' arrays.
        ids = [f.get("id") for f in filters or []]
        self.text = "utf8" if "vlen-utf8" in ids else "bytes" if self.dtype == object else None

    def __getitem__(self, key):
        # Basic and outer keys are read as they are: xarray's own decomposition of a negative-step
        # slice for such backends (IndexingSupport.BASIC/OUTER) is off by one in some versions
        # (np.arange(73)[::-3] comes back as 71, 68, ...).
        if isinstance(key, (indexing.BasicIndexer, indexing.OuterIndexer)):
            return self._read(key.tuple)
        return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.OUTER, self._read)

    def _read(self, key):
        """Outer indexing (an int, a slice or an integer array a dimension): the chunks covering
        each dimension's span are read, then each dimension's pick is taken."""
        spans, picks = [], []
        for k, n in zip(key, self.shape):
            if isinstance(k, slice):
                k = np.arange(n)[k]
            k = np.asarray(k)
            k = np.where(k < 0, k + n, k)
            if k.size == 0:
                spans.append((0, 0))
                picks.append(k.astype(np.intp))
                continue
            lo, hi = int(k.min()), int(k.max()) + 1
            spans.append((lo, hi))
            picks.append(k - lo)
        block = np.empty(tuple(hi - lo for lo, hi in spans), self.dtype)
        if block.size:
            self._fill(block, spans)
        for d in reversed(range(len(picks))):  # last first: an int drops its dimension
            block = np.take(block, picks[d], axis=d)
        return block

    def _fill(self, block, spans):
        ranges = [range(lo // c, (hi - 1) // c + 1) for (lo, hi), c in zip(spans, self.chunks)]
        for index in itertools.product(*ranges):
            data = self._values(self.source.chunk(self.name, list(index)))
            src, dst = [], []
            for i, c, (lo, hi) in zip(index, self.chunks, spans):
                a, b = max(lo, i * c), min(hi, (i + 1) * c)
                src.append(slice(a - i * c, b - i * c))
                dst.append(slice(a - lo, b - lo))
            block[tuple(dst)] = data[tuple(src)]


    def _values(self, buf):
        if self.text is None:
            return np.frombuffer(buf, self.dtype).reshape(self.chunks)
        itemsize = len(buf) // max(int(np.prod(self.chunks)), 1)
        if itemsize == 0:
            return np.full(self.chunks, "" if self.text == "utf8" else b"", object)
        raw = np.frombuffer(buf, f"S{itemsize}").reshape(self.chunks)
        return (np.char.decode(raw, "utf-8") if self.text == "utf8" else raw).astype(object)


def _raw_dataset(source):
    """The store's variables, undecoded, as xarray's zarr backend reads the metadata the cache would
    have; their values come from the engine."""
    folder = tempfile.mkdtemp(prefix="zarr-parallel-preview-")
    documents = source.metadata()
    try:
        for key, text in documents:
            path = os.path.join(folder, *key.split("/"))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        meta = xr.open_dataset(folder, engine="zarr", consolidated=True, decode_cf=False, mask_and_scale=False,
                               decode_times=False, chunks=None)
        zarrays = {key.split("/")[0]: json.loads(text) for key, text in documents if key.endswith("/.zarray")}
        variables = {}
        for name, var in meta.variables.items():
            z = zarrays[name]
            data = indexing.LazilyIndexedArray(_OutputArray(source, name, z["shape"], z["chunks"], z["dtype"],
                                                                 z.get("filters")))
            variables[name] = xr.Variable(var.dims, data, var.attrs, var.encoding)
        ds = xr.Dataset(variables, attrs=meta.attrs)
        meta.close()
        return ds
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def open_preview(config, base_dir=None, drop_variables=None, **decode):
    """The lazy preview Dataset of `config` (JSON or YAML text; paths relative to `base_dir`).
    `decode`: xarray's decode_cf options (mask_and_scale, decode_times, ...)."""
    source = _engine.Preview(config, os.fspath(base_dir or os.getcwd()))
    ds = _raw_dataset(source)
    if drop_variables:
        ds = ds.drop_vars([drop_variables] if isinstance(drop_variables, str) else list(drop_variables),
                          errors="ignore")
    return xr.decode_cf(ds, **{k: v for k, v in decode.items() if v is not None})


class ZarrParallelBackendEntrypoint(BackendEntrypoint):
    """xr.open_dataset("config.yaml", engine="zarr_parallel"): the cache the config would write,
    previewed lazily (nothing written)."""

    description = "Preview the cache a zarr-parallel config would write (lazy, read through the engine)"
    url = "https://github.com/zarr-parallel"
    open_dataset_parameters = ("filename_or_obj", "drop_variables", "mask_and_scale", "decode_times",
                               "concat_characters", "decode_coords", "use_cftime", "decode_timedelta")

    def open_dataset(self, filename_or_obj, *, drop_variables=None, mask_and_scale=None, decode_times=None,
                     concat_characters=None, decode_coords=None, use_cftime=None, decode_timedelta=None):
        path = os.path.abspath(os.fspath(filename_or_obj))
        with open(path, encoding="utf-8") as f:
            text = f.read()
        return open_preview(text, os.path.dirname(path), drop_variables, mask_and_scale=mask_and_scale,
                            decode_times=decode_times, concat_characters=concat_characters,
                            decode_coords=decode_coords, use_cftime=use_cftime, decode_timedelta=decode_timedelta)

    def guess_can_open(self, filename_or_obj):
        try:
            return os.fspath(filename_or_obj).endswith((".yaml", ".yml"))
        except TypeError:
            return False
