"""The `zarr-parallel` command of an installed package: the engine's binary inside it."""
import os
import sys
from pathlib import Path


def binary():
    return Path(__file__).resolve().parent / "bin" / "zarr-parallel"


def main():
    exe = binary()
    if not exe.exists():
        sys.exit(f"zarr-parallel: the engine binary is missing from the package ({exe}); reinstall it")
    os.execv(str(exe), [str(exe), *sys.argv[1:]])


if __name__ == "__main__":
    main()
