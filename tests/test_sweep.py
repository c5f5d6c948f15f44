"""b2models.sweep: grouping by build key, one build per batch, order of results, errors; --jobs/--dask of run."""

import os

import pytest

from b2models import cli
from b2models.sweep import SweepError, batches, n_jobs, sweep


class _Model:
    """A 'compiled network' that records which process built it and for which key."""

    def __init__(self, key, log_dir):
        self.key = key
        self.pid = os.getpid()
        with open(os.path.join(log_dir, f"build-{self.pid}-{key}-{id(self)}"), "w"):
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _Build:
    def __init__(self, log_dir):
        self.log_dir = log_dir

    def __call__(self, key):
        return _Model(key, self.log_dir)


def _run_point(model, pt):
    assert model.key == pt["n"] % 3, "a point ran on a model built for another key"
    return (pt["n"] ** 2, model.pid)


def test_batches_group_by_key_and_split_large_groups():
    pts = list(range(10))
    plan = batches(pts, key=lambda n: n % 2, n_workers=2)
    assert [k for k, _ in plan] == [0, 1]  # each group of 5 gets 2 * 5/10 = 1 batch
    assert sorted(i for _, idx in plan for i in idx) == pts
    plan = batches(pts, key=lambda n: 0, n_workers=3)  # one large group spreads over all workers
    assert len(plan) == 3 and sorted(i for _, idx in plan for i in idx) == pts
    plan = batches([0, 1, 2], key=lambda n: n, n_workers=8)  # never more batches than points
    assert len(plan) == 3


@pytest.mark.parametrize("jobs", [1, 2])
def test_sweep_builds_once_per_batch_and_keeps_order(jobs, tmp_path):
    pts = [{"n": n} for n in range(12)]
    out = sweep(_run_point, pts, build=_Build(str(tmp_path)), key=lambda pt: pt["n"] % 3, jobs=jobs)
    assert [r[0] for r in out] == [n * n for n in range(12)]
    builds = list(tmp_path.iterdir())
    n_batches = len(batches(pts, lambda pt: pt["n"] % 3, jobs))
    assert len(builds) == n_batches, f"expected one build per batch ({n_batches}), got {len(builds)}"
    if jobs == 2:
        assert all(pid != os.getpid() for _, pid in out), "jobs=2 should run in worker processes"


def test_sweep_without_build_and_progress():
    seen = []
    out = sweep(lambda model, pt: (model, pt + 1), [1, 2, 3], progress=seen.append)
    assert out == [(None, 2), (None, 3), (None, 4)]
    assert sum(seen) == 3
    assert sweep(lambda m, pt: pt, []) == []


def test_bad_jobs_and_unreachable_dask():
    with pytest.raises(SweepError, match="--jobs 0"):
        n_jobs(0)
    assert n_jobs(3) == 3 and n_jobs(3, "tcp://x:1") == -1
    with pytest.raises(SweepError, match="--dask"):
        sweep(lambda m, pt: pt, [1], jobs=1, dask_address="tcp://127.0.0.1:9")


def test_cli_run_rejects_bad_jobs_and_dask(capsys, tmp_path):
    code = cli.main(["run", "spikecoding.fig7", "--jobs", "0", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "--jobs 0" in err
    code = cli.main(["run", "spikecoding.fig7", "--dask", "tcp://127.0.0.1:9", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "--dask" in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir()), "nothing may be written for bad input"
