"""Parameter sweeps and repeats through joblib: local processes, or a Dask cluster.

:func:`sweep` runs ``run_point(model, point)`` for every point.  Points that share a build
key (``key(point)``: whatever shapes the compiled code, e.g. a network size or a synaptic
delay) are split into at most ``jobs`` batches; each batch is one joblib task that builds
its model once (``build(key)``) and runs all its points with new run arguments, so every
worker compiles or loads a network once per key instead of once per point.  Results come
back in the order of ``points``.

With ``dask_address`` the tasks go to the Dask scheduler at that address through joblib's
``dask`` backend (needs ``dask.distributed``); without it they run in local processes
(joblib's default ``loky`` backend), or in this process when ``jobs == 1``.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Hashable, Iterable


class SweepError(RuntimeError):
    """A sweep cannot run as asked (bad job count, no Dask, unreachable scheduler)."""


def parallel_backend(dask_address: str | None = None):
    """A context manager selecting joblib's dask backend for the cluster at ``dask_address``.

    ``None``: a no-op context (joblib's local processes).
    """
    if not dask_address:
        return contextlib.nullcontext()
    try:
        from dask.distributed import Client
    except ImportError:
        raise SweepError("--dask needs dask.distributed: pip install 'dask[distributed]'") from None
    from joblib import parallel_config

    try:
        Client(dask_address, timeout=10)
    except OSError as err:
        raise SweepError(f"--dask {dask_address}: cannot connect to the scheduler ({err})") from None
    return parallel_config(backend="dask")


def n_jobs(jobs: int, dask_address: str | None = None) -> int:
    """joblib's ``n_jobs``: all workers of the cluster with Dask, else ``jobs``."""
    if jobs < 1:
        raise SweepError(f"--jobs {jobs}: must be >= 1")
    return -1 if dask_address else int(jobs)


def batches(points: list, key: Callable[[Any], Hashable], n_workers: int) -> list[tuple[Hashable, list[int]]]:
    """Group point indices by build key (first-seen order) and deal each group into batches.

    A group gets a share of the ``n_workers`` batches in proportion to its size (at least one,
    at most one per point), so that many small groups are not split (each split costs a
    build) while one large group still spreads over all workers.
    """
    groups: dict = {}
    for idx, pt in enumerate(points):
        groups.setdefault(key(pt), []).append(idx)
    total = len(points)
    out = []
    for k, idxs in groups.items():
        n = max(1, min(len(idxs), round(n_workers * len(idxs) / total)))
        for b in range(n):
            out.append((k, idxs[b::n]))
    return out


def _run_batch(build, run_point, key, batch_points):
    model = build(key) if build is not None else None
    if hasattr(model, "__enter__"):
        with model as m:
            return [run_point(m, pt) for pt in batch_points]
    return [run_point(model, pt) for pt in batch_points]


def sweep(run_point: Callable[[Any, Any], Any], points: Iterable, *, build: Callable[[Hashable], Any] | None = None,
          key: Callable[[Any], Hashable] = lambda pt: None, jobs: int = 1, dask_address: str | None = None,
          progress: Callable[[int], None] | None = None) -> list:
    """``[run_point(model, pt) for pt in points]`` with one ``build(key(pt))`` per batch (see the module).

    ``build`` may return a context manager (e.g. one that opens a backend session); it is
    entered around the batch.  ``progress(n)`` is called with the number of points each
    finished batch held.
    """
    points = list(points)
    nj = n_jobs(jobs, dask_address)
    if not points:
        return []
    n_workers = len(points) if nj == -1 else nj
    plan = batches(points, key, n_workers)
    results: list = [None] * len(points)
    if nj == 1 and not dask_address:
        for k, idxs in plan:
            for idx, res in zip(idxs, _run_batch(build, run_point, k, [points[i] for i in idxs])):
                results[idx] = res
            if progress:
                progress(len(idxs))
        return results
    from joblib import Parallel, delayed

    with parallel_backend(dask_address):
        parallel = Parallel(n_jobs=nj, return_as="generator")
        outs = parallel(delayed(_run_batch)(build, run_point, k, [points[i] for i in idxs]) for k, idxs in plan)
        try:
            for (k, idxs), res in zip(plan, outs):
                for idx, r in zip(idxs, res):
                    results[idx] = r
                if progress:
                    progress(len(idxs))
        except Exception as err:
            if dask_address and type(err).__name__ in _LOST_WORKER_ERRORS:
                raise SweepError(f"the Dask cluster at {dask_address} lost workers and gave up on the sweep "
                                 f"({type(err).__name__}: {err})") from err
            raise
    return results


#: what the Dask scheduler raises once a task's workers keep dying (after its retries)
_LOST_WORKER_ERRORS = ("KilledWorker", "CommClosedError", "CancelledError", "FutureCancelledError")
