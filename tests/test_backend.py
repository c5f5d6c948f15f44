"""The backend switch: names, per-run seeds, run_args checks, CUDA code generation."""

import importlib.util

import numpy as np
import pytest
from brian2 import Network, NeuronGroup, ms

from b2models.backend import BackendError, NoGPUError, Session, check_backend, gpu_available, nvcc_path


def test_unknown_backend():
    with pytest.raises(BackendError, match="unknown backend 'gpu'"):
        check_backend("gpu")
    with pytest.raises(BackendError, match="threads must be >= 0"):
        Session("cpp", threads=-1)


def _rand_values(backend, seeds):
    out = []
    with Session(backend, "test_seeds") as s:
        G = NeuronGroup(5, "v : 1", name="g_seed")
        G.run_regularly("v = rand()", dt=0.1 * ms)
        s.build(Network(G), 0.1 * ms)
        for seed in seeds:
            s.run({G.v: np.zeros(5)}, seed=seed)
            out.append(np.array(G.v[:]))
    return out


@pytest.mark.parametrize("backend", ["numpy", pytest.param("cpp", marks=pytest.mark.standalone)])
def test_per_run_seeds_repeat_and_differ(backend):
    a, b, c = _rand_values(backend, [1, 1, 2])
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c), "different seeds gave the same random numbers"


@pytest.mark.parametrize("backend", ["numpy", pytest.param("cpp", marks=pytest.mark.standalone)])
def test_run_args_of_wrong_length_are_refused(backend):
    with Session(backend, "test_runargs") as s:
        G = NeuronGroup(5, "v : 1", name="g_args")
        s.build(Network(G), 0.1 * ms)
        with pytest.raises(ValueError, match="g_args.v: 3 values, expected 1 or 5"):
            s.run({G.v: np.zeros(3)})
        s.run({G.v: np.arange(5.0)})
        np.testing.assert_array_equal(G.v[:], np.arange(5.0))


def test_run_before_build_is_refused():
    with Session("numpy", "test_order") as s:
        with pytest.raises(BackendError, match="build"):
            s.run({})


@pytest.mark.slow
@pytest.mark.cuda
def test_cuda_code_for_fig2_generates_and_compiles():
    """brian2cuda generates and nvcc compiles the Fig 2 network; without a GPU it stops with a clear message."""
    if importlib.util.find_spec("brian2cuda") is None:
        pytest.skip("brian2cuda is not installed (pip install -e '.[cuda]')")
    if nvcc_path() is None:
        pytest.skip("nvcc is not installed: CUDA code cannot be compiled here")
    from b2models.models.spikecoding import SpikeCodingNetwork, SpikeCodingParams

    has_gpu, why = gpu_available()
    session = Session("cuda", "test_cuda_fig2", key=(500,))
    with session:
        if has_gpu:
            net = SpikeCodingNetwork(SpikeCodingParams(), session, 500)
            res = net.run_chunk(np.zeros((500, 2)), np.zeros((500, 2)), learning=False)
            assert res.n_steps == 500
        else:
            with pytest.raises(NoGPUError, match="generated and compiled .* cannot run here"):
                SpikeCodingNetwork(SpikeCodingParams(), session, 500)
    assert (session.directory / "main").exists(), "nvcc produced no binary"
