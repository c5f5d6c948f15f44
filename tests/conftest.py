import os
import shutil

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


def pytest_configure(config):
    # Brian2 logs code-generation notes at INFO level; keep test output readable
    import logging

    logging.getLogger("brian2").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def have_compiler():
    if shutil.which("g++") is None and shutil.which("c++") is None:
        pytest.skip("no C++ compiler: cpp_standalone tests need g++")
    return True


@pytest.fixture(scope="session")
def have_lfw():
    """The LFW people (``b2models data fetch lfw``); tests that train on them are skipped without them."""
    try:
        from b2models.data.loaders import lfw_people

        lfw_people()
    except Exception:
        pytest.skip("LFW not available (b2models data fetch lfw)")
    return True


@pytest.fixture(scope="session")
def have_keras():
    """Keras 3 for the autoencoder baseline (extra ``baselines``); its tests are skipped without it."""
    from b2models.models.ffa import keras_available

    ok, why = keras_available()
    if not ok:
        pytest.skip(why)
    return True
