"""Sweeps on a real Dask cluster: a ``distributed.LocalCluster`` with two worker processes on the loopback
interface runs ``spikecoding.fig7`` through ``--dask``; the metrics equal those of ``--jobs 1``, every worker
builds in its own directory, and a worker killed during the sweep leaves the run complete (its points are
retried) or failed with one clear line, never half-written."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

import b2models

distributed = pytest.importorskip("distributed", reason="the cluster extra (dask[distributed]) is not installed")

# a small fig7 sweep: panel C, two noise levels x two seeds, one build key (no delay)
SMALL = {"N": 8, "duration": "1*second", "chunk": "0.5*second", "test": "0.5*second", "discard": "0.1*second",
         "n_seeds": 2, "panels": "C", "noise_levels": "0.001,0.15", "delays": "0", "psc_taus": "0",
         "eps_scale": 10.0}


def _sets(params):
    return [w for k, v in params.items() for w in ("--set", f"{k}={v}")]


def _numbers(metrics):
    return {k: v for k, v in metrics.items() if k != "wall_s" and not k.endswith(("_s", "_us_per_step"))}


@pytest.fixture
def cluster(tmp_path):
    from distributed import Client, LocalCluster

    env = {"B2MODELS_CACHE": str(tmp_path / "cache"), "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None,
                      env=env, silence_logs=40) as lc, Client(lc) as client:
        yield lc.scheduler_address, client, env


def _cli(args, cwd, env, **kw):
    return subprocess.Popen([sys.executable, "-m", "b2models.cli", "run", *args], cwd=cwd,
                            env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **kw)


@pytest.mark.slow
@pytest.mark.standalone
def test_dask_sweep_equals_the_serial_sweep_and_builds_per_worker(cluster, tmp_path, monkeypatch, have_compiler):
    address, client, env = cluster
    monkeypatch.setenv("B2MODELS_CACHE", env["B2MODELS_CACHE"])
    t0 = time.perf_counter()
    serial = b2models.run("spikecoding.fig7", backend="cpp", quick=True, out=tmp_path / "serial", progress=False,
                          **{k: v for k, v in SMALL.items()})
    t_serial = time.perf_counter() - t0
    t0 = time.perf_counter()
    proc = _cli(["spikecoding.fig7", "--quick", "--backend", "cpp", "--no-progress", "--dask", address,
                 "--out", str(tmp_path / "dask"), *_sets(SMALL)], cwd=tmp_path, env=env)
    out, err = proc.communicate(timeout=900)
    t_dask = time.perf_counter() - t0
    assert proc.returncode == 0, err[-3000:]
    (run_dir,) = (tmp_path / "dask" / "spikecoding.fig7").iterdir()
    on_cluster = json.loads((run_dir / "metrics.json").read_text())
    assert _numbers(on_cluster) == _numbers(serial.metrics), "the cluster's sweep differs from the serial one"
    builds = sorted(p.name for p in (tmp_path / "cache" / "builds").iterdir() if p.name.startswith("spikecoding_fig7"))
    assert len(builds) >= 2, f"two workers building at once should use two build directories, found {builds}"
    print(f"serial {t_serial:.1f} s, dask (2 workers) {t_dask:.1f} s, build dirs {builds}")


@pytest.mark.slow
def test_a_worker_killed_during_the_sweep_is_retried_or_fails_cleanly(cluster, tmp_path):
    address, client, env = cluster
    params = {**SMALL, "duration": "6*second", "chunk": "1*second"}
    reference = b2models.run("spikecoding.fig7", backend="numpy", quick=True, out=tmp_path / "ref", progress=False,
                             **params)
    proc = _cli(["spikecoding.fig7", "--quick", "--backend", "numpy", "--no-progress", "--dask", address,
                 "--out", str(tmp_path / "dask"), *_sets(params)], cwd=tmp_path, env=env)
    pids = client.run(os.getpid)
    deadline = time.time() + 300
    victim = None
    while time.time() < deadline and victim is None and proc.poll() is None:
        busy = [w for w, tasks in client.processing().items() if tasks]
        if busy:
            victim = busy[0]
        time.sleep(0.1)
    assert victim is not None, "no sweep task ever reached the cluster"
    time.sleep(1.0)
    os.kill(pids[victim], signal.SIGKILL)
    out, err = proc.communicate(timeout=900)
    results = tmp_path / "dask" / "spikecoding.fig7"
    leftovers = [p.name for p in results.iterdir() if p.name.startswith(".")] if results.exists() else []
    assert not leftovers, f"half-written results left behind: {leftovers}"
    print(f"worker {victim} killed; the run exited {proc.returncode}")
    if proc.returncode == 0:  # the scheduler retried the lost points on the other worker
        (run_dir,) = results.iterdir()
        assert _numbers(json.loads((run_dir / "metrics.json").read_text())) == _numbers(reference.metrics)
    else:
        lines = err.strip().splitlines()
        assert lines and lines[-1].startswith("b2models: error:"), err[-3000:]
        assert not results.exists() or not list(results.iterdir())
