"""Builds the C++ engine with CMake for the Python running pip: the extension module and the
`zarr-parallel` binary, which goes inside the package (zarr_parallel/bin) so that the module's
workers and the console script find it wherever the package is installed. Metadata: pyproject.toml."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


class CMakeExtension(Extension):
    def __init__(self, name):
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        tag = f"py{sys.version_info.major}{sys.version_info.minor}"
        build = Path(os.environ.get("ZP_PIP_BUILD_DIR", ROOT / "build" / f"pip-{tag}"))
        env = dict(os.environ)
        env.setdefault("CCACHE_BASEDIR", str(ROOT))  # cache hits across checkouts
        configure = ["cmake", "-S", str(ROOT), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release", "-DZP_TESTS=OFF",
                     "-DZP_PYTHON=ON", f"-DPYTHON_EXECUTABLE={sys.executable}"]
        if shutil.which("ninja") and not (build / "CMakeCache.txt").exists():
            configure += ["-G", "Ninja"]
        subprocess.run(configure, check=True, env=env)
        targets = ["_zarr_parallel", "zarr-parallel"]
        # zarr-parallel-mpi exists as a target only when CMake found MPI.
        listed = subprocess.run(["cmake", "--build", str(build), "--target", "help"], capture_output=True,
                                text=True, env=env).stdout
        if "zarr-parallel-mpi" in listed:
            targets.append("zarr-parallel-mpi")
        subprocess.run(["cmake", "--build", str(build), "--target", *targets, "-j", str(os.cpu_count() or 2)],
                       check=True, env=env)
        target = Path(self.get_ext_fullpath(ext.name))
        target.parent.mkdir(parents=True, exist_ok=True)
        built = sorted((build / "python" / "zarr_parallel").glob("_zarr_parallel*.so"))
        if not built:
            raise RuntimeError(f"the extension was not built in {build}")
        shutil.copy2(built[0], target)
        bindir = target.parent / "bin"
        bindir.mkdir(exist_ok=True)
        # zarr-parallel-mpi (built when MPI is): what `zarr-parallel` execs for deploy_mode mpi.
        for program in ("zarr-parallel", "zarr-parallel-mpi"):
            if (build / "bin" / program).exists():
                shutil.copy2(build / "bin" / program, bindir / program)


def _wheel_tools_present():
    """pip builds a wheel: setuptools before 70.1 needs the `wheel` package for that. A pyenv or
    conda Python often lacks it, and `pip install --no-build-isolation --no-index .` cannot fetch
    it: say which Python and what to do instead of setuptools' "invalid command 'bdist_wheel'"."""
    if "bdist_wheel" not in sys.argv:
        return
    try:
        import wheel  # noqa: F401
    except ImportError:
        try:
            from setuptools.command import bdist_wheel  # noqa: F401  (setuptools >= 70.1)
        except ImportError:
            sys.exit(f"zarr-parallel: this Python ({sys.executable}) cannot build wheels: it has no "
                     "`wheel` package. Install it there (`python -m pip install wheel setuptools "
                     "pybind11`), or run `pip install .` without --no-index / --no-build-isolation so "
                     "that pip fetches it, or use Debian's /usr/bin/python3 (scripts/setup.sh "
                     "installs python3-wheel)")


_wheel_tools_present()
setup(
    package_dir={"": "python"},
    packages=["zarr_parallel"],
    ext_modules=[CMakeExtension("zarr_parallel._zarr_parallel")],
    cmdclass={"build_ext": CMakeBuild},
    zip_safe=False,
)
