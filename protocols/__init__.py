"""Protocols: stimulation, training and test sequences, one module per experiment.

Each module defines ``PROTOCOL`` (a :class:`b2models.protocol.Protocol`); a user's own protocol is a module
or file that does the same.  Calling the package, ``b2models.protocols()``, returns every registered
protocol by name (the suite's and those of installed plug-in packages).
"""

import sys as _sys
import types as _types


class _CallablePackage(_types.ModuleType):
    def __call__(self) -> dict:
        """Every registered protocol by name (see :func:`b2models.api.protocols`)."""
        from b2models.api import protocols

        return protocols()


_sys.modules[__name__].__class__ = _CallablePackage
