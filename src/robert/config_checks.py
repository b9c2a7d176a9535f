"""Checks of configuration values: one small set every config reader uses, one error style.

Each check takes the value and its full dotted field name (``simulate.n_layers``) and either returns the value
in a plain type or raises a one-line :class:`~robert.errors.UserError` that names the field, says what was
expected and shows what was given: ``simulate.n_layers must be a positive integer; got 0``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from robert.errors import UserError, choice_error


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def require(section: Mapping[str, Any], key: str, field: str) -> Any:
    """``section[key]``, or an error naming ``field`` as missing."""
    if not isinstance(section, Mapping) or key not in section:
        raise UserError(f"{field} is missing")
    return section[key]


def check_number(value: object, field: str, *, integer: bool = False, minimum: float | None = None,
                 strictly_above: bool = False, below: float | None = None,
                 maximum: float | None = None) -> float:
    """A number (an int when ``integer``) within the bounds: >= minimum (> with ``strictly_above``), < below,
    <= maximum."""
    kind = "an integer" if integer else "a number"
    if not (_is_number(value) and (not integer or isinstance(value, int))):
        raise UserError(f"{field} must be {kind}; got {value!r}")
    bounds = []
    if minimum is not None:
        bounds.append(f"{'>' if strictly_above else '>='} {minimum:g}")
    if below is not None:
        bounds.append(f"< {below:g}")
    if maximum is not None:
        bounds.append(f"<= {maximum:g}")
    too_low = minimum is not None and (value <= minimum if strictly_above else value < minimum)
    too_high = (below is not None and value >= below) or (maximum is not None and value > maximum)
    if too_low or too_high:
        raise UserError(f"{field} must be {kind} {' and '.join(bounds)}; got {value!r}")
    return int(value) if integer else float(value)


def check_positive_int(value: object, field: str) -> int:
    """An integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"{field} must be a positive integer; got {value!r}")
    return value


def check_positive(value: object, field: str) -> float:
    """A number > 0."""
    if not _is_number(value) or not value > 0:
        raise UserError(f"{field} must be a positive number; got {value!r}")
    return float(value)


def check_bool(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise UserError(f"{field} must be true or false; got {value!r}")
    return value


def check_choice(value: object, field: str, choices: Iterable[object]) -> Any:
    """One of ``choices`` (the error lists them)."""
    choices = list(choices)
    if value not in choices:
        raise choice_error(field, value, choices)
    return value


def check_mapping(value: object, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise UserError(f"{field} must be a mapping of settings; got {value!r}")
    return value


def check_range(value: object, field: str, *, minimum: float | None = None,
                strictly_above: bool = False) -> tuple[float, float]:
    """A ``[low, high]`` pair of numbers with low <= high (equal values fix the parameter), low within bounds."""
    ok = isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2
    if not (ok and all(_is_number(v) for v in value)):
        raise UserError(f"{field} must be a [low, high] pair of numbers; got {value!r}")
    low, high = float(value[0]), float(value[1])
    if low > high:
        raise UserError(f"{field} is inverted ({low:g} > {high:g}); expected [low, high] with low <= high")
    if minimum is not None:
        check_number(low, f"{field}[0]", minimum=minimum, strictly_above=strictly_above)
    return low, high


def check_weights(value: object, field: str, allowed: Iterable[str]) -> dict[str, float]:
    """A mapping of allowed names to weights >= 0 with a positive sum (names with weight 0 are dropped)."""
    allowed = list(allowed)
    mapping = check_mapping(value, field)
    unknown = sorted(set(mapping) - set(allowed))
    if unknown:
        raise UserError(f"{field} names {', '.join(map(str, unknown))}; expected some of: {', '.join(allowed)}")
    weights = {str(k): check_number(v, f"{field}.{k}", minimum=0.0) for k, v in mapping.items()}
    if not sum(weights.values()) > 0:
        raise UserError(f"{field} must give at least one positive weight; got {dict(mapping)!r}")
    return {k: v for k, v in weights.items() if v > 0}


def check_group_choices(conf_dir: Path, overrides: Sequence[str]) -> None:
    """Every ``group=choice`` command-line override names a ``conf/<group>/<choice>.yaml``.

    Entry scripts run this before Hydra composes: Hydra reports an unknown choice in a dozen lines with exit
    status 1; this is the one-line error (exit status 2) listing the choices. Sub-field overrides
    (``model.lr=...``), sweeps' functions and ``null`` are left to Hydra.
    """
    for override in overrides:
        if override.startswith("-") or "=" not in override:
            continue
        key, value = override.split("=", 1)
        key = key.lstrip("+~")
        group = Path(conf_dir) / key
        if not key.isidentifier() or not group.is_dir():
            continue
        choices = sorted(path.stem for path in group.glob("*.yaml"))
        for choice in (v.strip() for v in value.split(",")):  # a -m sweep lists several
            if choice and choice != "null" and not set(choice) & set("()[]{}$*") and choice not in choices:
                raise choice_error(key, choice, choices)


__all__ = ["check_bool", "check_choice", "check_group_choices", "check_mapping", "check_number", "check_positive",
           "check_positive_int", "check_range", "check_weights", "require"]
