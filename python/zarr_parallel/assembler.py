"""ZarrParallelAssembler with the original package's keyword arguments, over the C++ engine.

Every argument becomes a key of the same config the CLI reads, so a script and a YAML file that say
the same thing make the same cache (and the same config hash)."""
import builtins
import json
import logging
import numbers
import os
import sys
import types
import uuid

from . import _main_guard
from . import speculation
from . import _zarr_parallel as _engine
from . import utils

_DEPLOY_MODES = ("series", "local", "slurm", "mpi", "dask_distributed")


def _can_ask():
    """True when a person can answer input(): stdin is a terminal, or a front end answers it
    (Jupyter's kernel puts its own function in builtins.input while a cell runs)."""
    if not isinstance(builtins.input, types.BuiltinFunctionType):
        return True
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError, OSError):  # closed, or not a file at all
        return False


def _piped_answer(seconds=5.0):
    """The first line already on a stdin that is not a terminal (`yes | python script.py`, as the
    original's users answer it), waiting at most `seconds`; None at its end, when nothing comes,
    or when there is no stdin. Bounded: a pipe nobody writes never holds a batch job."""
    import select
    try:
        fd = sys.stdin.fileno()
        ready, _, _ = select.select([fd], [], [], seconds)
        text = os.read(fd, 4096).decode("utf-8", "replace") if ready else ""
    except (AttributeError, ValueError, OSError):
        return None
    return text.splitlines()[0] if text.strip() else None


class PlanPicture(str):
    """SVG text of a plan; Jupyter displays it as a picture."""

    def _repr_svg_(self):
        return str(self)


class CacheResult(str):
    """The store's path (a str, as before), with what the run did: `decision` is "hit", "new",
    "continue", "append" or "rebuild", and `reason` says why (the run's first line of output)."""

    def __new__(cls, path, decision, reason):
        obj = super().__new__(cls, path)
        obj.decision = decision
        obj.reason = reason
        return obj


def _run_job(plan_path, job, threads, secrets=None, plan_sha256="", store_options=""):
    """One job of a saved plan, inside a dask worker process. `secrets`: the remote source's
    credentials, which plans never hold; handed to the engine for this job only, never put in the
    worker's environment (where its later tasks and children would find them). `plan_sha256`: the
    plan file as the client read it; an edited one is refused. A store on S3: `plan_path` is the
    plan's URL in the prefix, `store_options` the store's public options (endpoint, region), and
    the credentials the worker's own environment's (no secrets travel with the task)."""
    from zarr_parallel import _zarr_parallel
    _zarr_parallel.run_worker(plan_path, [job], threads, f"dask-{os.getpid()}", secrets or "", plan_sha256,
                              store_options)
    return job


def _plain(value):
    """What the original's users pass, as config values: datetime (pandas.Timestamp is one) and
    numpy.datetime64 as ISO text, slices as [start, stop], numpy numbers as Python numbers, tuples
    as lists. Called by json.dumps for anything it cannot write itself."""
    import datetime
    if isinstance(value, slice):
        if value.step not in (None, 1):
            raise TypeError(f"a slice with a step ({value!r}) has no config form")
        return [value.start, value.stop]
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat(sep=" ") if isinstance(value, datetime.datetime) else value.isoformat()
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy comes with xarray
        np = None
    if np is not None:
        if isinstance(value, np.datetime64):  # as the datetime it is, so both spell it alike
            return _plain(value.astype("datetime64[us]").item())
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} {value!r}")


def _integer(value, name):
    """An int, or what numpy and others pass as one (numpy.int64, ...); None stays None."""
    if value is None:
        return None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    raise ValueError(f"{name} must be int, got {type(value).__name__}: {value!r}")


def _check(value, types, name):
    if value is not None and not isinstance(value, types):
        names = " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
        raise ValueError(f"{name} must be {names}, got {type(value).__name__}: {value!r}")


def _refuse_nul(value, name):
    """A NUL in a string is cut where it reaches C ("a.nc\\0/x" opens a.nc): refused, naming the key
    as the engine's config errors do (preprocessors[0].time)."""
    if isinstance(value, (str, bytes)) and ("\0" in value if isinstance(value, str) else b"\0" in value):
        raise ValueError(f"config key '{name}': contains a NUL character; text and paths cannot hold one")
    if isinstance(value, dict):
        for k, v in value.items():
            _refuse_nul(k, name)
            _refuse_nul(v, f"{name}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _refuse_nul(v, f"{name}[{i}]")


def _filter_by_keys(backend_kwargs, filter_by_keys):
    """cfgrib's filter_by_keys, from its backend_kwargs or given itself. xarray hands backend_kwargs
    to the engine; of cfgrib's, only filter_by_keys changes what is read here (indexpath is ignored):
    any other is refused rather than silently not applied."""
    _check(backend_kwargs, dict, "backend_kwargs")
    _check(filter_by_keys, dict, "filter_by_keys")
    kwargs = dict(backend_kwargs or {})
    kwargs.pop("indexpath", None)
    from_kwargs = kwargs.pop("filter_by_keys", None)
    if kwargs:
        raise ValueError(f"backend_kwargs: {sorted(kwargs)} not supported (only filter_by_keys; "
                         "indexpath is ignored)")
    _check(from_kwargs, dict, "backend_kwargs['filter_by_keys']")
    if from_kwargs is not None and filter_by_keys is not None and from_kwargs != filter_by_keys:
        raise ValueError("filter_by_keys given twice with different values (in backend_kwargs and "
                         "as filter_by_keys)")
    return from_kwargs if from_kwargs is not None else filter_by_keys


class ZarrParallelAssembler:
    """Plans and writes a Zarr cache of `data_uri` (a kerchunk .json, a NetCDF glob or a Zarr store).

    `preprocessors` is a list of dicts such as {"type": "subset", "time": ("2000-01-01", "2000-02-28"),
    "latitude": (60, -30)}; `variables` maps variable names to their transforms ({"d2m": {}} or
    {"t2m": [{"type": "rename", "new_name": "air_temperature"}]}); `chunks` maps dimensions to output
    chunk sizes. After cache(), `cache_store` is the store's path: xr.open_zarr(zp.cache_store).
    GRIB sources take cfgrib's `backend_kwargs={"filter_by_keys": {...}}` (its `indexpath` is
    ignored: the engine keeps its own manifest cache), or `filter_by_keys=` itself.
    """

    def __init__(self, data_uri, preprocessors=None, chunks=None, cache_label=None, variables=None,
                 add_attrs=None, engine="kerchunk", log_level=None, concat_dim=None, encoding=None,
                 compressor=None, zarr_format=None, shards=None, group=None, storage_options=None,
                 remote_protocol=None, remote_options=None, allow_local_references=None,
                 backend_kwargs=None, filter_by_keys=None):
        _check(data_uri, (str, os.PathLike), "data_uri")
        if data_uri is None:
            raise ValueError("data_uri is required")
        _refuse_nul(os.fspath(data_uri), "data_uri")
        _check(preprocessors, (list, tuple), "preprocessors")
        _check(chunks, (dict, str), "chunks")
        _check(cache_label, str, "cache_label")
        _check(variables, (dict, list, tuple), "variables")
        _check(add_attrs, dict, "add_attrs")
        _check(engine, str, "engine")
        _check(log_level, int, "log_level")
        _check(storage_options, dict, "storage_options")
        _check(remote_protocol, str, "remote_protocol")
        _check(remote_options, dict, "remote_options")
        _check(allow_local_references, bool, "allow_local_references")
        filter_by_keys = _filter_by_keys(backend_kwargs, filter_by_keys)
        if log_level is None:
            log_level = utils.verbosity()
        engine = engine or "auto"
        # The original's default engine is 'kerchunk'; a NetCDF file or a Zarr folder cannot be a
        # reference set, so for anything but a .json it means: find the engine from the path.
        if engine == "kerchunk" and not os.fspath(data_uri).endswith(".json"):
            engine = "auto"
        self._config = {"data_uri": os.fspath(data_uri), "engine": engine, "log_level": log_level}
        for key, value in (("preprocessors", preprocessors), ("chunks", chunks), ("cache_label", cache_label),
                           ("variables", variables), ("add_attrs", add_attrs), ("concat_dim", concat_dim),
                           ("encoding", encoding), ("compressor", compressor), ("zarr_format", zarr_format), ("shards", shards),
                           ("group", group), ("storage_options", storage_options),
                           ("remote_protocol", remote_protocol), ("remote_options", remote_options),
                           ("allow_local_references", allow_local_references),
                           ("filter_by_keys", filter_by_keys)):
            if value is not None:
                self._config[key] = value
        if isinstance(variables, (list, tuple)):
            self._config["variables"] = list(variables)
        for key, value in self._config.items():
            _refuse_nul(value, key)
        self.cache_store = None

    def _full_config(self, **run):
        cfg = dict(self._config)
        cfg.update({k: v for k, v in run.items() if v is not None})
        for key, value in run.items():
            _refuse_nul(os.fspath(value) if isinstance(value, os.PathLike) else value, key)
        try:
            return json.dumps(cfg, default=_plain)
        except TypeError as e:
            raise ValueError(f"arguments must be plain values (numbers, strings, lists, dicts): {e}") from None

    def inspect(self):
        """The source's dimensions, coordinate ranges, variables, encodings and chunk grid."""
        access = {k: self._config[k] for k in ("storage_options", "remote_protocol", "remote_options")
                  if k in self._config}
        filters = self._config.get("filter_by_keys")
        return json.loads(_engine.inspect(self._config["data_uri"], self._config["engine"],
                                          self._config.get("group") or "", json.dumps(access),
                                          json.dumps(filters) if filters is not None else ""))

    def plan(self, cache_store=None, cache_dir=None, **run):
        """The plan the cache would run, as a dict (jobs, read amplification, memory, recommendations)."""
        if cache_store is None and cache_dir is None:
            cache_dir = "."
        return json.loads(_engine.plan(self._full_config(cache_store=cache_store, cache_dir=cache_dir, **run),
                                       os.getcwd()))

    def plan_picture(self, cache_store=None, cache_dir=None, dims=None, **run):
        """The plan drawn as SVG (as `zarr-parallel plan --svg`); shown inline in a notebook. `dims`:
        the two dimensions to draw (rows, columns); default: each array's two largest."""
        if cache_store is None and cache_dir is None:
            cache_dir = "."
        return PlanPicture(_engine.plan_svg(self._full_config(cache_store=cache_store, cache_dir=cache_dir, **run),
                                            os.getcwd(), list(dims or [])))

    def open(self, **kwargs):
        """The cache, opened with xarray."""
        if self.cache_store is None:
            raise ValueError("no cache yet: call cache() first")
        import xarray as xr
        return xr.open_zarr(self.cache_store, **kwargs)

    def preview(self, **decode):
        """The Dataset cache() would write — selection, transforms, attributes, output chunks — as
        a lazy xarray Dataset: each chunk is assembled from the source through the engine when
        its values are asked for; nothing is written. `decode`: xarray's decode_cf options."""
        from .preview import open_preview
        return open_preview(self._full_config(), os.getcwd(), **decode)

    _transform_ds = preview  # the original's name for it

    def cache(self, cache_store=None, num_jobs=None, generate_stats=False, deploy_mode="local",
              await_completion=True, simultaneous_worker_limit=4, memory_limit="2GB", worker_timeout="30:00",
              overwrite=True, recommend_changes=True, resume=False, cache_dir=None, client=None,
              scheduler_address=None, quiet_dask=True, slurm=None, on_source_change="append",
              cache_storage_options=None, assume_unchanged=None):
        """Writes the cache and returns its path (also in self.cache_store), a str whose `decision`
        ("hit", "new", "continue", "append", "rebuild") and `reason` say what the run did and why.
        deploy_mode: series, local, slurm (an sbatch array), mpi (every rank of `mpirun -n N python
        script.py` calls this) or dask_distributed. `slurm`: site options for sbatch, as the
        config's `slurm` key ({"partition": ..., "account": ..., "qos": ..., "extra": [...]}).
        `on_source_change`: append (the default: files added after the end along concat_dim extend
        the store; any other change rebuilds), rebuild or error, when a complete store's sources
        changed. `cache_store` (or `cache_dir`) may be s3://bucket/prefix (every deploy_mode),
        reached with `cache_storage_options` (fsspec's spelling; default: the source's
        storage_options, without a non-S3 source's credentials), as the config's keys;
        dask_distributed workers take S3 credentials from their own environment (AWS_*), as s3fs
        does. `assume_unchanged`: a remote object whose server sends neither ETag nor
        Last-Modified counts as unchanged when its size is (else such a source is rebuilt on every
        call)."""
        _main_guard.refuse_in_worker("ZarrParallelAssembler.cache()")
        _check(cache_storage_options, dict, "cache_storage_options")
        _check(assume_unchanged, bool, "assume_unchanged")
        if deploy_mode not in _DEPLOY_MODES:
            raise ValueError(f"deploy_mode must be one of {', '.join(_DEPLOY_MODES)}, got {deploy_mode!r}")
        if cache_store is None and cache_dir is None:
            raise ValueError("give cache_store (the .zarr path) or cache_dir")
        num_jobs = _integer(num_jobs, "num_jobs")
        simultaneous_worker_limit = _integer(simultaneous_worker_limit, "simultaneous_worker_limit")
        if isinstance(memory_limit, numbers.Integral) and not isinstance(memory_limit, bool):
            memory_limit = str(int(memory_limit))  # bytes, as dask takes them
        if deploy_mode == "dask_distributed" and client is None and not scheduler_address:
            import dask
            import distributed  # noqa: F401  (its config keys)
            _main_guard.refuse_unguarded_script(
                dask.config.get("distributed.worker.multiprocessing-method", "spawn"))
        config = self._full_config(
            cache_store=os.fspath(cache_store) if cache_store is not None else None,
            cache_dir=os.fspath(cache_dir) if cache_dir is not None else None, num_jobs=num_jobs,
            generate_stats=generate_stats, deploy_mode=deploy_mode, await_completion=await_completion,
            simultaneous_worker_limit=simultaneous_worker_limit, memory_limit=memory_limit,
            worker_timeout=worker_timeout, overwrite=overwrite, recommend_changes=recommend_changes,
            resume=resume, slurm=slurm, on_source_change=on_source_change,
            cache_storage_options=cache_storage_options, assume_unchanged=assume_unchanged)
        base = os.getcwd()
        if deploy_mode == "mpi":  # a folder store or one on S3: rank 0 coordinates
            return self._cache_mpi(config, base, recommend_changes)
        if _engine.store_of(config, base).startswith("s3://"):
            run_jobs = None
            if deploy_mode == "dask_distributed":
                def run_jobs(plan_url, plan_sha256, store_options, pending, threads):
                    # Called by the engine (on this thread) while it holds the store's lease.
                    session = {"plan_path": plan_url, "plan_sha256": plan_sha256, "pending": list(pending),
                               "threads_per_worker": threads, "store_options": store_options, "secrets": None}
                    self._run_dask(session, simultaneous_worker_limit, memory_limit, client, scheduler_address,
                                   quiet_dask)
            return self._cache_object_store(config, base, recommend_changes, run_jobs)
        session = json.loads(_engine.begin(config, base, not recommend_changes))
        if session["status"] == "stopped":
            self._confirm(session["recommendations"])
            session = json.loads(_engine.begin(config, base, True))
        self.cache_store = session["store"]
        session.update(config=config, base=base)
        result = CacheResult(self.cache_store, session.get("decision", ""), session.get("reason", ""))
        if session["status"] == "hit":
            return result
        try:
            if deploy_mode == "dask_distributed":
                self._run_dask(session, simultaneous_worker_limit, memory_limit, client, scheduler_address,
                               quiet_dask)
                _engine.finish(config, base, session["plan_path"], session["started"])
            else:
                # Waits with the GIL released; Ctrl-C / "interrupt kernel" stop the workers and
                # raise KeyboardInterrupt (the store stays resumable).
                _engine.run(config, base, session["plan_path"], session["pending"], session["started"])
        finally:
            _engine.release(config, base)  # the store lock, also when a job failed
        return result

    def _cache_object_store(self, config, base, recommend_changes, run_jobs=None):
        # One engine call, as the CLI's run: the lease is held and renewed inside it (dask's jobs
        # run from it, through run_jobs).
        code = _engine.cache_object_store(config, base, not recommend_changes, run_jobs)
        self.cache_store = _engine.store_of(config, base)
        if code == 3:
            raise ValueError("stopped on recommendations (see above; change the arguments, or pass "
                             "recommend_changes=False)")
        return CacheResult(self.cache_store, "", "")

    def _cache_mpi(self, config, base, recommend_changes):
        code = _engine.cache_mpi(config, base, not recommend_changes)
        self.cache_store = _engine.store_of(config, base)
        if code == 3:
            raise ValueError("stopped on recommendations (see above; change the arguments, or pass "
                             "recommend_changes=False)")
        return self.cache_store

    @staticmethod
    def _confirm(recommendations):
        # Only advice that saves reads or memory stops a run; the engine printed the rest.
        text = "\n".join(f"  - {r['key']}: {r['message']}" for r in recommendations if r.get("saves", True))
        print("Recommendations:\n" + text)
        if not _can_ask():
            # No terminal: an answer already piped in counts (as input() read it for the original);
            # an empty, closed or silent stdin never holds the run (a batch job, a workflow engine).
            answer = _piped_answer()
            if answer is None:
                raise ValueError("stopped on recommendations; no terminal to ask on and no answer on stdin "
                                 "(change the arguments, or pass recommend_changes=False to proceed as "
                                 "planned):\n" + text)
            print(f"Continue without recommendations? (y/n) {answer}  [read from stdin]")
        else:
            # Asked through input(), as the original: a terminal, or Jupyter's own input(). End of
            # input is "n".
            try:
                answer = input("Continue without recommendations? (y/n) ")
            except (EOFError, OSError, RuntimeError):
                answer = ""
        if not answer.strip().lower().startswith("y"):
            raise ValueError("stopped on recommendations (change the arguments, answer y, or pass "
                             "recommend_changes=False):\n" + text)

    def _run_dask(self, session, workers, memory_limit, client, scheduler_address, quiet):
        from dask.distributed import Client, LocalCluster
        if quiet:
            logging.getLogger("distributed").setLevel(logging.ERROR)
        owned = []
        if client is None:
            if scheduler_address:
                client = Client(scheduler_address)
                owned.append(client)
            else:
                cluster = LocalCluster(n_workers=workers, threads_per_worker=1, memory_limit=memory_limit,
                                       dashboard_address=":0",
                                       silence_logs=logging.ERROR if quiet else logging.WARNING)
                client = Client(cluster)
                owned += [client, cluster]
        try:
            run = uuid.uuid4().hex[:8]
            # A store on S3 hands no secrets (its workers use their environment's).
            secrets = session["secrets"] if "secrets" in session else _engine.secrets_of(session["config"],
                                                                                         session["base"])
            verbose = self._config.get("log_level", 0) >= 1

            def submit(job, worker):
                # A copy (issue 34) runs on the idle worker it was made for, once.
                copy = {} if worker is None else dict(workers=[worker], allow_other_workers=False)
                suffix = "" if worker is None else "-copy"
                return client.submit(_run_job, session["plan_path"], job, session["threads_per_worker"], secrets,
                                     session.get("plan_sha256", ""), session.get("store_options", ""), key=f"zarr-parallel-{run}-job-{job}{suffix}", retries=0 if copy else 2,
                                     pure=False, **copy)

            total = len(session["pending"])
            jobs = speculation.DaskJobs(client, submit, session["pending"],
                                        speculation.stderr_log if verbose else lambda text: None)
            jobs.run(lambda left: verbose and print(f"zarr-parallel: {total - left}/{total} job{'' if total == 1 else 's'} done",
                                                    file=sys.stderr))
        finally:
            for obj in owned:
                obj.close()
