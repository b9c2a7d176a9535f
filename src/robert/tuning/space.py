"""The search space: ``tune.space`` entries checked against the training config, sampled per trial.

Each entry names one Optuna parameter::

    finetune_lr: {path: model.finetune.lr, type: float, low: 1.0e-4, high: 3.0e-2, log: true}
    pretrain_lr: {path: [model.pretrain.lr, model.top.lr], type: float, low: 1.0e-3, high: 0.3, log: true}
    hidden_1:    {path: "model.hidden[0]", type: int, low: 100, high: 1000, step: 50}
    batch_size:  {path: model.batch_size, type: categorical, choices: [32, 64, 128]}

``path`` is a setting of the composed training config (dots between keys, ``[i]`` for a list entry),
or a list of settings that take the same value. ``low``/``high`` are inclusive. Hand-written because
Optuna's distributions say nothing about where a value goes; the checks here turn a typo or an empty
range into one line naming the field before any trial runs.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    check_distribution_compatibility,
)

from robert.config_checks import check_bool, check_choice, check_mapping, check_number, check_range, require
from robert.errors import UserError

TYPES = ("int", "float", "categorical")
ENTRY_KEYS = {"path", "type", "low", "high", "log", "step", "choices"}
# Sections a trial may not change: the study's own settings, Hydra's and the file locations.
FIXED_SECTIONS = ("tune", "hydra", "paths")
_SEGMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[\d+\])*)")

Key = str | int


def parse_path(path: object, field: str) -> tuple[Key, ...]:
    """``"model.hidden[0]"`` -> ``("model", "hidden", 0)``."""
    if not isinstance(path, str) or not path:
        raise UserError(f"{field} must be a setting such as model.finetune.lr; got {path!r}")
    keys: list[Key] = []
    for segment in path.split("."):
        match = _SEGMENT.fullmatch(segment)
        if match is None:
            raise UserError(f"{field}: {path!r} is not a setting path (keys joined by dots, [i] for a list entry)")
        keys.append(match.group(1))
        keys.extend(int(index) for index in re.findall(r"\[(\d+)\]", match.group(2)))
    return tuple(keys)


def format_path(keys: Sequence[Key]) -> str:
    text = ""
    for key in keys:
        text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else key)
    return text


def lookup(cfg: Mapping, keys: Sequence[Key], field: str) -> Any:
    """The value at ``keys``; a UserError naming ``field`` and what exists there when it is not a setting."""
    if keys[0] in FIXED_SECTIONS:
        raise UserError(f"{field}: {format_path(keys)} cannot be tuned (the {keys[0]} section is fixed per study)")
    node: Any = cfg
    for depth, key in enumerate(keys):
        where = format_path(keys[:depth]) or "the training config"
        if isinstance(key, int):
            if not isinstance(node, list) or key >= len(node):
                size = f"a list of {len(node)}" if isinstance(node, list) else "not a list"
                raise UserError(f"{field}: {format_path(keys)} does not exist ({where} is {size})")
        elif not isinstance(node, Mapping) or key not in node:
            known = ", ".join(sorted(map(str, node))) if isinstance(node, Mapping) else "no keys"
            raise UserError(f"{field}: unknown setting {format_path(keys)} ({where} has: {known})")
        node = node[key]
    return node


def assign(cfg: dict, keys: Sequence[Key], value: Any) -> None:
    node: Any = cfg
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _finite(value: float, field: str) -> float:
    if not math.isfinite(value):
        raise UserError(f"{field} must be a finite number; got {value!r}")
    return value


@dataclass(frozen=True)
class Parameter:
    """One Optuna parameter and the settings its value is written to."""

    name: str
    paths: tuple[tuple[Key, ...], ...]
    distribution: BaseDistribution

    def suggest(self, trial: optuna.Trial) -> Any:
        d = self.distribution
        if isinstance(d, CategoricalDistribution):
            return trial.suggest_categorical(self.name, d.choices)
        if isinstance(d, IntDistribution):
            return trial.suggest_int(self.name, d.low, d.high, step=d.step, log=d.log)
        return trial.suggest_float(self.name, d.low, d.high, step=d.step, log=d.log)


def _distribution(name: str, entry: Mapping, kind: str) -> BaseDistribution:
    field = f"tune.space.{name}"
    if kind == "categorical":
        choices = entry.get("choices")
        if not isinstance(choices, Sequence) or isinstance(choices, str) or not choices:
            raise UserError(f"{field}.choices must be a non-empty list; got {choices!r}")
        if len(set(map(repr, choices))) != len(choices):
            raise UserError(f"{field}.choices lists a value twice: {list(choices)}")
        for choice in choices:
            if choice is not None and not isinstance(choice, bool | int | float | str):
                raise UserError(f"{field}.choices may hold numbers, strings, booleans or null; got {choice!r}")
        extra = sorted({"low", "high", "log", "step"} & set(entry))
        if extra:
            raise UserError(f"{field}: {', '.join(extra)} do not apply to type categorical (use choices)")
        return CategoricalDistribution(list(choices))
    if "choices" in entry:
        raise UserError(f"{field}.choices applies to type categorical only (type is {kind})")
    integer = kind == "int"
    low, high = (_finite(check_number(require(entry, key, f"{field}.{key}"), f"{field}.{key}", integer=integer),
                         f"{field}.{key}") for key in ("low", "high"))
    low, high = (int(v) for v in (low, high)) if integer else (low, high)
    check_range([low, high], field)
    if low == high:
        raise UserError(f"{field}: empty range, low = high = {low:g} (fix the value in the model config instead)")
    log, step = check_bool(entry.get("log", False), f"{field}.log"), entry.get("step")
    if log and low <= 0:
        raise UserError(f"{field}: log scale needs low > 0; got low {low:g}")
    if step is not None:
        if log:
            raise UserError(f"{field}: step and log cannot be combined")
        step = check_number(step, f"{field}.step", integer=integer, minimum=0, strictly_above=True)
        if step > high - low:
            raise UserError(f"{field}: step {step} is wider than the range {low}..{high}")
    if kind == "int":
        return IntDistribution(low, high, log=log, step=step or 1)
    return FloatDistribution(float(low), float(high), log=log, step=None if step is None else float(step))


def _check_kind_fits(field: str, where: str, current: Any, kind: str) -> None:
    """An integer setting takes type int (or categorical), a real one float; others only categorical."""
    if isinstance(current, Mapping | list):
        raise UserError(f"{field}: {where} is a {'mapping' if isinstance(current, Mapping) else 'list'}, not a "
                        "single setting (name one entry, e.g. model.hidden[0])")
    if kind == "categorical":
        return
    if isinstance(current, bool) or not _is_number(current):
        raise UserError(f"{field}: {where} is {current!r}, not a number: use type categorical")
    if kind == "int" and not isinstance(current, int):
        raise UserError(f"{field}: {where} is a real number ({current!r}): use type float")
    if kind == "float" and isinstance(current, int):
        raise UserError(f"{field}: {where} is an integer ({current!r}): use type int")


class SearchSpace:
    """The parameters of ``tune.space``, checked against the training config ``cfg`` they will change."""

    def __init__(self, space: object, cfg: Mapping) -> None:
        if not check_mapping(space, "tune.space"):
            raise UserError("tune.space must name at least one parameter; got none")
        self.parameters: list[Parameter] = []
        claimed: dict[tuple[Key, ...], str] = {}
        for name, entry in space.items():
            field = f"tune.space.{name}"
            check_mapping(entry, field)
            unknown = sorted(set(entry) - ENTRY_KEYS)
            if unknown:
                raise UserError(f"{field}: unknown field {unknown[0]!r}; expected some of: "
                                f"{', '.join(sorted(ENTRY_KEYS))}")
            kind = check_choice(entry.get("type"), f"{field}.type", TYPES)
            raw_paths = entry.get("path")
            raw_paths = raw_paths if isinstance(raw_paths, list) and raw_paths else [raw_paths]
            paths = tuple(parse_path(p, f"{field}.path") for p in raw_paths)
            for keys in paths:
                where = format_path(keys)
                _check_kind_fits(field, where, lookup(cfg, keys, f"{field}.path"), kind)
                if keys in claimed:
                    raise UserError(f"{field}.path: {where} is already set by tune.space.{claimed[keys]}")
                claimed[keys] = str(name)
            self.parameters.append(Parameter(str(name), paths, _distribution(str(name), entry, kind)))

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.parameters]

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        return {p.name: p.suggest(trial) for p in self.parameters}

    def apply(self, cfg: Mapping, values: Mapping[str, Any]) -> dict:
        """A deep copy of ``cfg`` with each parameter's value at its paths."""
        out = copy.deepcopy(dict(cfg))
        for parameter in self.parameters:
            for keys in parameter.paths:
                assign(out, keys, values[parameter.name])
        return out

    def check_against(self, study: optuna.Study) -> None:
        """A continued study must keep each parameter's kind (and a categorical its choices)."""
        seen: dict[str, BaseDistribution] = {}
        for trial in study.get_trials(deepcopy=False):
            for name, distribution in trial.distributions.items():
                seen.setdefault(name, distribution)
        for parameter in self.parameters:
            old = seen.get(parameter.name)
            if old is None:
                continue
            try:
                check_distribution_compatibility(old, parameter.distribution)
            except ValueError as exc:
                raise UserError(f"tune.space.{parameter.name} does not fit study {study.study_name!r}, whose trials "
                                f"sampled it from {old} ({exc}); use a new tune.study_name") from None
