"""Valid non-default values for a settings leaf: explicit ones first, then ones derived from its type."""

from __future__ import annotations

import enum
import fnmatch
import typing
from typing import Any

from settings.base import duration_seconds
from settings.quantities import Cpu, Memory

#: Values tried first for leaves whose generic value would not do (pattern on the leaf key).
EXPLICIT: dict[str, list[Any]] = {
    "*.replicas.min": [3, 2],
    "*.replicas.max": [5, 9],
    "*.autoscaling.*": [55],
    "postgres.backup.schedule": ["15 4 * * *"],
    "environment.kubernetes.minVersion": ["1.31"],
    "environment.kubernetes.maxVersion": ["1.33"],
    "environment.kubernetes.apiServerPorts": [[6443]],
    "postgres.backup.retention": ["14d"],
    "postgres.instances": [2],
    "postgres.pooler.instances": [3],
}

_GUESSES: dict[Any, list[Any]] = {
    int: [3, 30, 500],
    Cpu: ["123m", "1234m", "100"],
    Memory: ["48Mi", "200Mi", "1234Mi", "3Gi", "500Gi"],
    str: ["leaf-x", "https://leaf-x.example.com", "sha256:" + "a" * 64],
}


def _duration_twice(text: str) -> str:
    seconds = int(duration_seconds(text) * 2) or 30
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def candidates(key: str, annotation: Any, now: Any) -> list[Any]:
    """Values to try for the leaf ``key`` of type ``annotation`` (currently ``now``): EXPLICIT's first, then
    ones derived from its type."""
    tried = [v for pattern, values in EXPLICIT.items() if fnmatch.fnmatch(key, pattern) for v in values]
    return tried + _derived(annotation, now)


def _derived(kind: Any, now: Any) -> list[Any]:
    """Bools flipped, another member, ints +-1, ratios moved, durations doubled, strings suffixed..."""
    origin = typing.get_origin(kind)
    values: list[Any]
    if kind is bool:
        values = [not now]
    elif origin is typing.Literal:
        values = list(typing.get_args(kind))
    elif isinstance(kind, type) and issubclass(kind, enum.Enum):
        values = [member.value for member in kind]
    elif kind is int and now is not None:
        values = [now + 1, now - 1]
    elif kind is float:
        values = [round(v, 4) for v in (now - 0.05, now * 0.5, now + 0.05, now * 1.5) if v > 0]
    elif origin is dict:
        first = next(iter(now), None) if now else None
        values = [{**now, first: f"{now[first]}-x"}] if first is not None else []
        values += [{**(now or {}), key: "x"} for key in ("LEAF_X", "leaf_x", "leafX")]
    elif origin is list:
        values = [[*(now or []), "leafX"], ["192.0.2.0/24"]]
    elif isinstance(now, str):
        values = [_duration_twice(now)] if _is_duration(now) else []
        values += [f"{now}-x", *_GUESSES[str]]
    else:
        values = list(_GUESSES.get(kind, _GUESSES[str]))
    return values


def _is_duration(text: str) -> bool:
    try:
        duration_seconds(text)
    except ValueError:
        return False
    return not text.isdigit()
