"""The `if __name__ == "__main__":` guard that dask's process workers need.

dask.distributed starts its worker processes with multiprocessing's "spawn": each one runs the
user's script again (as `__mp_main__`) before it takes tasks. A script that calls cache() at its top
level without the guard would then start a cache inside every worker, which fails (the store is
locked), and dask's nanny restarts the worker, for ever. Two checks stop that with one message:
the coordinator reads its own script before it starts a LocalCluster, and a worker process that
re-runs a script refuses to start a cache."""
import ast
import multiprocessing
import sys

GUARD_HELP = ('put the calls under `if __name__ == "__main__":` (see examples/python/basic.py): '
              "dask starts its worker processes by running the script again, and each would start "
              "the cache again")


def in_worker_bootstrap():
    """True while a spawned process (a dask worker) re-runs the parent's script, before it starts."""
    return bool(getattr(multiprocessing.current_process(), "_inheriting", False)) or _caller_is_mp_main()


def _caller_is_mp_main():
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_globals.get("__name__") == "__mp_main__":
            return True
        frame = frame.f_back
    return False


def refuse_in_worker(what):
    """Raises RuntimeError when called while a worker process re-runs the script."""
    if in_worker_bootstrap():
        raise RuntimeError(f"zarr-parallel: {what} was called again inside a dask worker process that "
                           f"is re-running the script: {GUARD_HELP}")


def _is_main_guard(node):
    """`if __name__ == "__main__":` (either order)."""
    if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare):
        return False
    t = node.test
    if len(t.ops) != 1 or not isinstance(t.ops[0], ast.Eq):
        return False
    sides = [t.left, t.comparators[0]]
    names = [s.id for s in sides if isinstance(s, ast.Name)]
    texts = [s.value for s in sides if isinstance(s, ast.Constant)]
    return names == ["__name__"] and texts == ["__main__"]


def unguarded_script_line():
    """The line of the running script whose top-level statement (outside the guard) led to this
    call, or None: when guarded, interactive (Jupyter, -c, stdin: nothing is re-run), or unknown."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not path or main is None:
        return None
    line = None
    frame = sys._getframe(1)
    while frame is not None:  # the outermost frame running the script's top level
        if frame.f_globals is main.__dict__ and frame.f_code.co_name == "<module>":
            line = frame.f_lineno
        frame = frame.f_back
    if line is None:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
    except (OSError, SyntaxError, ValueError):
        return None
    # Under a guard anywhere (also inside a try: or with: at the top level) is guarded.
    for node in ast.walk(tree):
        if _is_main_guard(node) and node.lineno <= line <= (node.end_lineno or node.lineno):
            return None
    return path, line


def refuse_unguarded_script(method):
    """Before starting process workers with `method` (spawn, forkserver re-run the script)."""
    if method not in ("spawn", "forkserver"):
        return
    where = unguarded_script_line()
    if where:
        raise RuntimeError(f"zarr-parallel: {where[0]}, line {where[1]}: cache(deploy_mode='dask_distributed') "
                           f"runs at the script's top level: {GUARD_HELP}")
