"""Models: Brian2 network builders, one module per paper, with their equations as named string constants.

Calling the package, ``b2models.models()``, returns model name -> module (the names ``b2models show`` takes).
"""

import sys as _sys
import types as _types


class _CallablePackage(_types.ModuleType):
    def __call__(self) -> dict:
        """Model name -> the module that builds it (see :func:`b2models.api.models`)."""
        from b2models.api import models

        return models()


_sys.modules[__name__].__class__ = _CallablePackage
