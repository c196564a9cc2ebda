"""Helpers the original package's scripts import: set_verbose(level) sets the log level (0-2) that
ZarrParallelAssembler uses when none is given; without it, ZP_LOG_LEVEL is read, then 0."""
import os

_verbose = None


def set_verbose(level):
    global _verbose
    _verbose = max(0, min(2, int(level)))


def verbosity():
    if _verbose is not None:
        return _verbose
    try:
        return max(0, min(2, int(os.environ.get("ZP_LOG_LEVEL", "0"))))
    except ValueError:
        return 0
