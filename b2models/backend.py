"""One switch for the four simulation targets, standalone-first.

``numpy`` and ``cython`` are Brian2's runtime code generation targets, ``cpp`` is
``cpp_standalone`` and ``cuda`` is brian2cuda's ``cuda_standalone``.

Protocols never talk to Brian2's devices directly.  They open a :class:`Session`,
create their network inside it, call :meth:`Session.build` once with the duration
of one run, and then :meth:`Session.run` as often as they need, each time with a
``run_args`` mapping (``{group.v: values, timed_array: values}``) that replaces
initial values and input before that run:

* standalone targets compile one binary and re-run it with ``device.run(run_args=...)``;
* runtime targets store the freshly built state once and restore it before every
  run, so that both kinds of target start each run from the same place: the built
  initial state overwritten by the run arguments, time zero, empty monitors.

Each session gets its own build directory (cached by a key derived from the model,
and locked so that two processes never share one), its own results directory (each run
overwrites the previous run's results, which are read back right after the run), and its
own random seed for every run (``seed=`` of :meth:`Session.run`).
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BACKENDS = ("numpy", "cython", "cpp", "cuda")
STANDALONE = {"cpp": "cpp_standalone", "cuda": "cuda_standalone"}

#: Default compute capability for CUDA code generated without a GPU (H100).
DEFAULT_COMPUTE_CAPABILITY = 9.0


class BackendError(RuntimeError):
    """A backend cannot be used (unknown name, missing compiler or package)."""


class NoGPUError(BackendError):
    """CUDA code was generated and compiled, but there is no GPU to run it on."""


def cache_root() -> Path:
    """Directory for build and cython caches (``$B2MODELS_CACHE`` or ``./.b2models_cache``)."""
    return Path(os.environ.get("B2MODELS_CACHE", ".b2models_cache")).resolve()


def check_backend(name: str) -> str:
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}: expected one of {', '.join(BACKENDS)}")
    return name


# --------------------------------------------------------------------------------------
# GPU / CUDA detection
# --------------------------------------------------------------------------------------
def gpu_available() -> tuple[bool, str]:
    """Whether a CUDA GPU can be used, and why not.

    Loads the driver library with ctypes and asks it for devices, so that nothing
    CUDA-related needs to be installed for the answer 'no'.
    """
    try:
        lib = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False, "no CUDA driver (libcuda.so.1 cannot be loaded)"
    if lib.cuInit(0) != 0:
        return False, "the CUDA driver found no usable device (cuInit failed)"
    count = ctypes.c_int(0)
    if lib.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value == 0:
        return False, "the CUDA driver reports no GPU"
    return True, f"{count.value} GPU(s)"


def nvcc_path() -> str | None:
    found = shutil.which("nvcc")
    if found:
        return found
    for candidate in ("/usr/local/cuda/bin/nvcc",):
        if os.path.exists(candidate):
            return candidate
    return None


def _curand_dirs() -> tuple[str | None, str | None]:
    """Include and library directories of cuRAND: CUDA toolkit first, then the pip wheel."""
    nvcc = nvcc_path()
    if nvcc:
        root = Path(nvcc).resolve().parent.parent
        if (root / "include" / "curand.h").exists():
            for lib in ("lib64", "lib"):
                if list((root / lib).glob("libcurand.so*")):
                    return str(root / "include"), str(root / lib)
    try:
        import nvidia  # noqa: F401  (namespace package of the nvidia-* wheels)
    except ImportError:
        return None, None
    for base in map(Path, nvidia.__path__):
        for header in base.glob("*/include/curand.h"):
            libdir = header.parent.parent / "lib"
            libs = sorted(libdir.glob("libcurand.so*"))
            if libs:
                # the wheel ships only libcurand.so.N; the linker needs libcurand.so
                link_dir = cache_root() / "curand_link"
                link_dir.mkdir(parents=True, exist_ok=True)
                link = link_dir / "libcurand.so"
                if not link.exists():
                    link.symlink_to(libs[-1])
                return str(header.parent), str(link_dir) + os.pathsep + str(libdir)
    return None, None


# --------------------------------------------------------------------------------------
# build directories
# --------------------------------------------------------------------------------------
def build_key(backend: str, *parts) -> str:
    """Hash of the backend, Brian2's version and everything that shapes the generated code."""
    import brian2

    blob = json.dumps([backend, brian2.__version__, sys.version_info[:2], *map(str, parts)])
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


class _DirLock:
    """An exclusive, non-blocking lock on a directory (released when the process dies).

    Through :mod:`filelock`, so that it works on every platform Brian2 supports."""

    def __init__(self, directory: Path):
        self.directory = directory
        self._lock = None

    def acquire(self) -> bool:
        from filelock import FileLock, Timeout

        self.directory.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.directory / ".lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return False
        self._lock = lock
        return True

    def release(self):
        if self._lock is not None:
            self._lock.release()
            self._lock = None


def _locked_build_dir(name: str, key: str) -> tuple[Path, _DirLock]:
    base = cache_root() / "builds"
    for n in range(64):
        directory = base / (f"{name}-{key}" + ("" if n == 0 else f"-{n}"))
        lock = _DirLock(directory)
        if lock.acquire():
            return directory, lock
    raise BackendError(f"more than 64 concurrent builds of {name!r} in {base}")


# --------------------------------------------------------------------------------------
# the session
# --------------------------------------------------------------------------------------
@dataclass
class RunInfo:
    """What one run took."""

    wall_s: float
    binary_s: float | None = None


def _finest_clock(net):
    """The clock with the smallest dt among ``net``'s objects and their contained objects (Brian2's default
    clock when the network has none), so that one more object adds no finer clock to the network loop."""
    import brian2

    clocks = []
    for obj in net.objects:
        for o in [obj, *getattr(obj, "contained_objects", [])]:
            clock = getattr(o, "clock", None)
            if clock is not None:
                clocks.append(clock)
    return min(clocks, key=lambda c: float(c.dt_), default=brian2.defaultclock)


class Session:
    """Build a Brian2 network once and run it many times on one backend.

    Parameters
    ----------
    backend : one of :data:`BACKENDS`
    name : short name used for the build directory
    key : anything that identifies the generated code (model parameters, sizes, duration);
        builds with the same key reuse a compiled binary when the code did not change.
    threads : OpenMP threads for ``cpp`` (0 = no OpenMP, the default on 2 shared cores).
    compute_capability : for ``cuda`` without a GPU.

    Use as a context manager; leaving it resets Brian2 to the runtime device.
    """

    def __init__(
        self,
        backend: str,
        name: str = "net",
        key=(),
        threads: int = 0,
        compute_capability: float | None = None,
    ):
        self.backend = check_backend(backend)
        self.name = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        self.key = build_key(backend, name, key)
        self.threads = int(threads)
        if self.threads < 0:
            raise BackendError(f"threads must be >= 0, got {threads}")
        self.compute_capability = compute_capability
        self.net = None
        self.duration = None
        self.directory: Path | None = None
        self._lock = None
        self._n_runs = 0
        self._seed_holder = None
        self._built = False
        self.build_s = None
        self.last_run: RunInfo | None = None
        self._sizes: dict = {}

    # -- context manager ---------------------------------------------------------------
    def __enter__(self):
        self.open()
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    @property
    def standalone(self) -> bool:
        return self.backend in STANDALONE

    def open(self):
        """Select the Brian2 device and target; call before creating any Brian2 object."""
        import brian2

        brian2.set_device("runtime")
        brian2.device.reinit()
        # Brian2 logs every file lock at DEBUG level; thousands of re-runs make that measurable
        logging.getLogger("brian2.utils.filelock").setLevel(logging.WARNING)
        self.directory, self._lock = _locked_build_dir(self.name, self.key)
        if self.backend == "numpy":
            brian2.prefs.codegen.target = "numpy"
        elif self.backend == "cython":
            brian2.prefs.codegen.target = "cython"
            cache = cache_root() / "cython"
            cache.mkdir(parents=True, exist_ok=True)
            brian2.prefs.codegen.runtime.cython.cache_dir = str(cache)
            brian2.prefs.codegen.runtime.cython.multiprocess_safe = True
        elif self.backend == "cpp":
            brian2.prefs.devices.cpp_standalone.openmp_threads = self.threads
            brian2.set_device("cpp_standalone", directory=str(self.directory), build_on_run=False)
        elif self.backend == "cuda":
            self._configure_cuda()
            brian2.set_device("cuda_standalone", directory=str(self.directory), build_on_run=False)
        return self

    def _configure_cuda(self):
        try:
            import brian2cuda  # noqa: F401
        except ImportError as err:
            raise BackendError(
                "the cuda backend needs brian2cuda: pip install -e '.[cuda]'"
            ) from err
        import brian2

        if nvcc_path() is None:
            raise BackendError("the cuda backend needs nvcc (CUDA toolkit) on PATH")
        has_gpu, _ = gpu_available()
        prefs = brian2.prefs.devices.cuda_standalone
        if not has_gpu:
            prefs.cuda_backend.detect_gpus = False
            prefs.cuda_backend.gpu_id = 0
            prefs.cuda_backend.compute_capability = (
                self.compute_capability or DEFAULT_COMPUTE_CAPABILITY
            )
        prefs.cuda_backend.cuda_path = str(Path(nvcc_path()).resolve().parent.parent)
        inc, lib = _curand_dirs()
        if inc:
            brian2.prefs.codegen.cpp.include_dirs = [inc]
            brian2.prefs.codegen.cpp.library_dirs = lib.split(os.pathsep)
            brian2.prefs.codegen.cpp.runtime_library_dirs = lib.split(os.pathsep)

    def close(self):
        import brian2

        if self._lock is not None:
            self._lock.release()
            self._lock = None
        if self.standalone:
            brian2.device.reinit()
            brian2.set_device("runtime")
            brian2.device.reinit()

    # -- build ---------------------------------------------------------------------------
    def build(self, net, duration, report=None):
        """Compile (standalone) or prepare (runtime) ``net`` for runs of ``duration``."""
        import brian2

        if self._built:
            raise BackendError("a session builds one network; open a new session for another")
        # the holder of the per-run seed: a single shared integer, set through run_args.  It sits on the
        # network's finest clock: on Brian2's default clock (0.1 ms) it would make the network loop turn at
        # 0.1 ms in a network stepped at 1 ms (ten turns per step, nine of them idle).  brian2cuda's synapse
        # code refers to the default clock, which must then be part of the network: on cuda it stays there.
        clock = brian2.defaultclock if self.backend == "cuda" else _finest_clock(net)
        self._seed_holder = brian2.NeuronGroup(
            1, "run_seed : integer (shared, constant)", name=f"{self.name}_seed", clock=clock
        )
        net.add(self._seed_holder)
        self.net = net
        self.duration = duration
        t0 = time.perf_counter()
        if self.standalone:
            device = brian2.get_device()
            device.apply_run_args()
            if self.backend == "cpp":
                arr = device.get_array_name(self._seed_holder.variables["run_seed"])
                n_gen = max(1, self.threads)
                device.insert_code(
                    "main",
                    f"for (int _i=0; _i<{n_gen}; _i++) "
                    f"brian::_random_generators[_i].seed((unsigned long){arr}[0] * 1000003UL + _i);",
                )
            net.run(duration, report=report)
            if self.backend == "cuda":
                self._build_cuda(device)
            else:
                device.build(directory=str(self.directory), run=False)
        else:
            net.store("_b2models_initial")
        self.build_s = time.perf_counter() - t0
        self._built = True
        return self

    def _build_cuda(self, device):
        device.build(directory=str(self.directory), compile=False, run=False)
        makefile = self.directory / "makefile"
        text = makefile.read_text()
        makefile.write_text(text.replace("-std=c++11", "-std=c++17"))
        import brian2

        device.compile_source(
            str(self.directory), brian2.prefs.codegen.cpp.compiler, False, False
        )
        has_gpu, why = gpu_available()
        if not has_gpu:
            raise NoGPUError(
                f"CUDA code generated and compiled in {self.directory}, but it cannot run here: {why}"
            )

    def expect_size(self, view, size: int):
        """Declare the size of a synaptic (dynamic) variable so run_args can be checked."""
        self._sizes[(view.group_name, view.name)] = int(size)

    # -- run -------------------------------------------------------------------------------
    def run(self, run_args=None, seed: int | None = None, report=None) -> RunInfo:
        """Run the built network once from its built state, with ``run_args`` applied."""
        import brian2

        if not self._built:
            raise BackendError("build() the network before run()")
        run_args = dict(run_args or {})
        _check_run_args(run_args, self._sizes)
        if seed is not None:
            run_args[self._seed_holder.run_seed] = int(seed) % (2**31)
        t0 = time.perf_counter()
        info = RunInfo(wall_s=0.0)
        if self.standalone:
            device = brian2.get_device()
            self._n_runs += 1
            # one results directory per session: every run overwrites the previous run's files
            results = f"results_{os.getpid()}_{id(self):x}"
            try:
                device.run(
                    directory=str(self.directory),
                    results_directory=results,
                    with_output=False,
                    run_args=run_args,
                )
            finally:
                for fname in device.run_args_arrays:  # one file per run: do not let them pile up
                    for suffix in ("", ".lock"):
                        try:
                            os.remove(self.directory / "static_arrays" / (fname + suffix))
                        except OSError:
                            pass
            info.binary_s = device.timers.get("run_binary")
        else:
            self.net.restore("_b2models_initial")
            if seed is not None:
                brian2.seed(int(seed) % (2**31))
            for key, value in run_args.items():
                if isinstance(key, brian2.TimedArray):
                    key.values[:] = np.asarray(value, dtype=key.values.dtype).reshape(
                        key.values.shape
                    )
                else:
                    key[:] = value
            self.net.run(self.duration, report=report)
        info.wall_s = time.perf_counter() - t0
        self.last_run = info
        return info


def _check_run_args(run_args, sizes):
    """Check sizes before running: a wrong length only prints an error in the binary."""
    import brian2

    for key, value in run_args.items():
        value = np.asarray(value)
        if isinstance(key, brian2.TimedArray):
            expected = key.values.shape
            if value.size != 1 and value.shape != expected:
                raise ValueError(
                    f"run_args for TimedArray {key.name!r}: shape {value.shape}, expected {expected}"
                )
        else:
            var = key.variable
            size = sizes.get((key.group_name, key.name))
            if size is None:
                if getattr(var, "dynamic", False):
                    continue  # size known only to the binary; see Session.expect_size
                size = 1 if var.scalar else var.size
            if value.size != 1 and value.size != size:
                raise ValueError(
                    f"run_args for {key.group_name}.{key.name}: {value.size} values, "
                    f"expected 1 or {size}"
                )


def describe() -> dict:
    """Versions and toolchain facts for config.json."""
    import brian2

    out = {"python": sys.version.split()[0], "brian2": brian2.__version__, "numpy": np.__version__}
    try:
        import brian2cuda

        out["brian2cuda"] = brian2cuda.__version__
    except Exception:  # pragma: no cover - optional
        pass
    try:
        out["cxx"] = subprocess.run(
            ["c++", "--version"], capture_output=True, text=True, timeout=10
        ).stdout.splitlines()[0]
    except Exception:  # pragma: no cover
        pass
    return out
