"""Kubernetes resource quantities as small value types.

``Cpu.parse("250m")`` and ``Memory.parse("512Mi")`` reject what the API server would
reject (``"500x"``, negative values) at config-validation time, and print back in
canonical form, so the rendered manifests never depend on how a stack file spelled them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

_CPU = re.compile(r"^(?P<number>\d+(\.\d+)?)(?P<unit>m?)$")
_MEMORY = re.compile(r"^(?P<number>\d+(\.\d+)?)(?P<unit>Ki|Mi|Gi|Ti|k|M|G|T)?$")
_MEMORY_UNITS = {
    None: 1,
    "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
}


class _Quantity:
    """Shared pydantic plumbing: accept the type itself, a string or a number."""

    @classmethod
    def parse(cls, value: Any) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    @classmethod
    def __get_pydantic_core_schema__(cls, _source: Any, _handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        # Built when a model class is defined, before mutmut picks a mutant: it cannot test this line
        # (tests/test_value_types.py checks the text a quantity dumps to).
        return core_schema.no_info_plain_validator_function(  # pragma: no mutate
            cls.parse, serialization=core_schema.to_string_ser_schema()  # pragma: no mutate
        )


@dataclass(frozen=True, order=True)
class Cpu(_Quantity):
    millis: int

    @classmethod
    def parse(cls, value: Any) -> Cpu:
        if isinstance(value, Cpu):
            return value
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ValueError(f"CPU must be a quantity such as '250m' or '2', got {value!r}")
        match = _CPU.match(str(value).strip())
        if not match:
            raise ValueError(f"{value!r} is not a CPU quantity; write millicores ('250m') or cores ('2', '0.5')")
        number = Decimal(match["number"])
        millis = number if match["unit"] == "m" else number * 1000
        if millis != int(millis) or millis <= 0:
            raise ValueError(f"{value!r} must be a positive whole number of millicores")
        return cls(int(millis))

    def __str__(self) -> str:
        return str(self.millis // 1000) if self.millis % 1000 == 0 else f"{self.millis}m"


@dataclass(frozen=True, order=True)
class Memory(_Quantity):
    bytes: int

    @classmethod
    def parse(cls, value: Any) -> Memory:
        if isinstance(value, Memory):
            return value
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ValueError(f"memory must be a quantity such as '512Mi' or '2Gi', got {value!r}")
        match = _MEMORY.match(str(value).strip())
        if not match:
            raise ValueError(f"{value!r} is not a memory quantity; use Ki, Mi, Gi or Ti ('512Mi', '2Gi')")
        amount = Decimal(match["number"]) * _MEMORY_UNITS[match["unit"]]  # the pattern admits only numbers
        if amount != int(amount) or amount <= 0:
            raise ValueError(f"{value!r} must be a positive whole number of bytes")
        return cls(int(amount))

    def __str__(self) -> str:
        for unit in ("Ti", "Gi", "Mi", "Ki"):
            size = _MEMORY_UNITS[unit]
            if self.bytes % size == 0:
                return f"{self.bytes // size}{unit}"
        return str(self.bytes)
