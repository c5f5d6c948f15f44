"""Parameter dataclasses: overrides from the command line, unit checks, JSON form.

Every model and protocol keeps its parameters in one dataclass whose defaults are
Brian2 quantities (or plain numbers, booleans, strings).  ``--set NAME=VALUE`` on the
command line becomes :func:`apply_overrides`, which parses VALUE with Brian2's unit
names (``20*ms``, ``50/second``, ``0.5``) and refuses a value whose dimensions differ
from the default's.
"""

from __future__ import annotations

import ast
import dataclasses
import math
import numbers

import numpy as np


class ParameterError(ValueError):
    """A parameter name or value given by the user is not acceptable."""


def _unit_namespace() -> dict:
    import brian2.units as units
    import brian2.units.allunits as allunits

    ns = {k: v for k, v in vars(allunits).items() if not k.startswith("_")}
    ns.update({k: v for k, v in vars(units).items() if not k.startswith("_")})
    ns.update({"pi": math.pi, "e": math.e, "inf": math.inf, "sqrt": np.sqrt, "exp": np.exp})
    return ns


_ALLOWED_NODES = (
    ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Name, ast.Load, ast.Call,
    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.USub, ast.UAdd, ast.Mod, ast.FloorDiv,
)


def parse_value(text: str):
    """Parse a numeric expression with Brian2 units, e.g. ``'20*ms'`` or ``'1e-3'``."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as err:
        raise ParameterError(f"cannot parse {text!r} as a value with units") from err
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise ParameterError(f"cannot parse {text!r}: only numbers, units and arithmetic allowed")
        if isinstance(node, ast.Call) and not (
            isinstance(node.func, ast.Name) and node.func.id in ("sqrt", "exp")
        ):
            raise ParameterError(f"cannot parse {text!r}: only sqrt() and exp() may be called")
    ns = _unit_namespace()
    try:
        return eval(compile(tree, "<value>", "eval"), {"__builtins__": {}}, ns)  # noqa: S307
    except NameError as err:
        raise ParameterError(f"unknown unit or name in {text!r}: {err}") from err
    except Exception as err:  # arithmetic on incompatible units, ...
        raise ParameterError(f"cannot evaluate {text!r}: {err}") from err


def _dims(value):
    from brian2.units.fundamentalunits import get_dimensions

    return get_dimensions(value)


def unit_text(value) -> str:
    from brian2.units.fundamentalunits import DIMENSIONLESS, get_unit

    d = _dims(value)
    if d is DIMENSIONLESS:
        return "1 (dimensionless)"
    try:
        return str(get_unit(d))
    except Exception:  # pragma: no cover
        return str(d)


def convert(name: str, default, text: str):
    """Convert ``text`` to the type and dimensions of ``default``; ParameterError if impossible."""
    label = f"--set {name}={text}"
    if isinstance(default, bool):
        low = text.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ParameterError(f"{label}: expected true or false")
    if isinstance(default, str):
        return text
    if default is None:
        return parse_value(text)
    if isinstance(default, tuple):
        return _convert_tuple(name, default, text)
    return _check_number(label, name, default, parse_value(text))


def coerce(name: str, default, value):
    """Check a Python ``value`` for the parameter ``name`` against its ``default`` by the rules of ``--set``:
    the same dimensions, an integer where an integer is expected, true/false for a flag.  A string for a
    non-string parameter is parsed as ``--set`` would parse it (``"20*ms"``).  ParameterError if not."""
    from brian2 import Quantity

    if isinstance(value, str) and not isinstance(default, str):
        return convert(name, default, value)
    label = f"{name}={value!r}"
    if isinstance(default, bool):
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        raise ParameterError(f"{label}: expected True or False")
    if isinstance(default, str):
        if isinstance(value, str):
            return value
        raise ParameterError(f"{label}: expected a string")
    if default is None:
        return value
    if isinstance(default, tuple):
        if not isinstance(value, (tuple, list)) or not value:
            raise ParameterError(f"{label}: expected a tuple, e.g. {default!r}")
        if not default:
            return tuple(value)
        out = []
        for i, item in enumerate(value):
            ref = default[min(i, len(default) - 1)]
            try:
                out.append(coerce(f"{name}[{i}]", ref, item))
            except ParameterError as err:
                why = str(err).split(": ", 1)[-1]
                raise ParameterError(f"{label}: item {i} ({item!r}): {why}") from err
        return tuple(out)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Number, Quantity, np.ndarray)):
        raise ParameterError(f"{label}: expected a number" + (
            f" with units of {unit_text(default)}" if isinstance(default, Quantity) else ""))
    return _check_number(label, name, default, value)


def _check_number(label: str, name: str, default, value):
    from brian2 import Quantity

    if isinstance(default, Quantity) or isinstance(value, Quantity):
        if _dims(value) is not _dims(default):
            raise ParameterError(
                f"{label}: wrong units, {name} expects {unit_text(default)} "
                f"(e.g. {default!s}), got {unit_text(value)}"
            )
        if isinstance(default, Quantity) and np.ndim(default) != np.ndim(value):
            raise ParameterError(f"{label}: expected a scalar")
        return value
    if isinstance(default, numbers.Integral):
        if isinstance(value, float) and not value.is_integer():
            raise ParameterError(f"{label}: expected an integer")
        try:
            return int(value)
        except (TypeError, ValueError) as err:
            raise ParameterError(f"{label}: expected an integer") from err
    if isinstance(default, numbers.Real):
        try:
            return float(value)
        except (TypeError, ValueError) as err:
            raise ParameterError(f"{label}: expected a number") from err
    raise ParameterError(f"--set {name}: parameter of type {type(default).__name__} cannot be set")


def _convert_tuple(name: str, default: tuple, text: str) -> tuple:
    """``'256,128,128'`` or ``'(256, 128, 128)'`` for a tuple default: each item is converted like the
    default's item at that position (its last item past the end), so ints stay ints and units are checked."""
    body = text.strip()
    if body.startswith("(") and body.endswith(")"):
        body = body[1:-1]
    parts = [p for p in (q.strip() for q in body.split(",")) if p]
    if not parts:
        raise ParameterError(f"--set {name}={text}: expected comma-separated values, e.g. {_tuple_text(default)}")
    if not default:
        return tuple(parse_value(p) for p in parts)
    out = []
    for i, part in enumerate(parts):
        ref = default[min(i, len(default) - 1)]
        try:
            out.append(convert(f"{name}[{i}]", ref, part))
        except ParameterError as err:
            why = str(err).removeprefix(f"--set {name}[{i}]={part}: ")
            raise ParameterError(f"--set {name}={text}: item {i} ({part!r}): {why}") from err
    return tuple(out)


def _tuple_text(default: tuple) -> str:
    return ",".join(str(v) for v in default) or "1,2"


def parse_assignments(items) -> dict[str, str]:
    """``['tau=20*ms', ...]`` -> ``{'tau': '20*ms'}`` with a clear error for bad items."""
    out = {}
    for item in items or ():
        if "=" not in item:
            raise ParameterError(f"--set {item!r}: expected NAME=VALUE, e.g. --set tau=20*ms")
        name, text = item.split("=", 1)
        name = name.strip()
        if not name.isidentifier():
            raise ParameterError(f"--set {item!r}: {name!r} is not a parameter name")
        out[name] = text
    return out


def apply_overrides(params, assignments: dict[str, str], extra_valid=()):
    """Return a copy of the dataclass ``params`` with ``assignments`` (``--set`` texts) applied.

    Names are looked up in ``params``; an unknown name raises ParameterError listing
    the valid ones.  Names in ``extra_valid`` are skipped (they belong elsewhere).
    """
    return _apply(params, assignments, extra_valid, convert, "--set ")


def apply_values(params, values: dict, extra_valid=()):
    """Like :func:`apply_overrides`, for Python values (``tau=20*ms``) checked by :func:`coerce`."""
    return _apply(params, values, extra_valid, coerce, "")


def _apply(params, assignments, extra_valid, conv, prefix):
    fields = {f.name: f for f in dataclasses.fields(params)}
    changes = {}
    for name, value in assignments.items():
        if name in extra_valid:
            continue
        if name not in fields:
            raise ParameterError(
                f"{prefix}{name}: unknown parameter; valid names: {', '.join(sorted(fields))}"
            )
        changes[name] = conv(name, getattr(params, name), value)
    new = dataclasses.replace(params, **changes)
    validate = getattr(new, "validate", None)
    if validate is not None:
        try:
            validate()
        except ValueError as err:
            raise ParameterError(str(err)) from err
    return new


def jsonable(value):
    """JSON form of a parameter value: quantities keep their unit."""
    from brian2 import Quantity

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Quantity):
        arr = np.asarray(value)
        return {
            "value": arr.tolist(),
            "unit": str(value.dim) if str(value.dim) else "1",
            "text": str(value),
        }
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def describe_params(params) -> list[tuple[str, str, str]]:
    """(name, default, unit) rows for help texts."""
    rows = []
    for f in dataclasses.fields(params):
        v = getattr(params, f.name)
        rows.append((f.name, str(v), unit_text(v) if not isinstance(v, (bool, str)) else type(v).__name__))
    return rows
