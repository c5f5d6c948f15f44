"""b2models: Brian2 models of four papers, with protocols and analyses.

The suite's parts live under one name: :mod:`b2models.models` (network builders and their equations),
:mod:`b2models.protocols` (stimulation, training and test sequences), :mod:`b2models.analysis` (pure
functions of arrays) and :mod:`b2models.data` (loaders and generators).  The functions below are the Python
form of the command line (see :mod:`b2models.api`)::

    import b2models
    run = b2models.run("spikecoding.fig2", backend="numpy", quick=True)
    print(run.metrics)
"""

from b2models import models, protocols  # callable packages: b2models.models(), b2models.protocols()
from b2models._version import __version__
from b2models.api import Run, RunError, default_params, equations, load, run

__all__ = ["__version__", "Run", "RunError", "run", "load", "protocols", "models", "equations", "default_params"]
