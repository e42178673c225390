"""The explicit message registry: every callable wire name with its parameter signature.

A parameter's type is a short spec string: `ref:VM`, `string`, `int`, `float`, `bool`, `map`,
`set`, `datetime`, `enum:<name>`, `any`. Each one compiles once into a converter that accepts
the loose inputs xapi accepts (ints as decimal strings, enums in any case ...) and raises
INTERNAL_ERROR on anything else, as xapi's unmarshalling does.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from xod.sim.errors import XapiFailure
from xod.sim.schema import ENUM_LOOKUP
from xod.sim.values import DateTime

MISSING: Any = object()


def _bad(kind: str, value: Any) -> XapiFailure:
    return XapiFailure("INTERNAL_ERROR", f"Expected {kind}, got {value!r}")


def _to_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise _bad("string", value)


def _to_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    raise _bad("int", value)


def _to_float(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise _bad("float", value)


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise _bad("bool", value)


def _to_map(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    raise _bad("map", value)


def _to_set(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return list(value)
    raise _bad("set", value)


def _to_datetime(value: Any) -> DateTime:
    if isinstance(value, str):
        return DateTime(value)
    raise _bad("datetime", value)


def _enum_converter(name: str) -> Callable[[Any], str]:
    lookup = ENUM_LOOKUP[name]

    def convert(value: Any) -> str:
        if isinstance(value, str) and value.lower() in lookup:
            return lookup[value.lower()]
        raise _bad(f"enum {name}", value)

    return convert


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "string": _to_string,
    "int": _to_int,
    "float": _to_float,
    "bool": _to_bool,
    "map": _to_map,
    "set": _to_set,
    "datetime": _to_datetime,
    "any": lambda value: value,
}


def converter(spec: str) -> Callable[[Any], Any]:
    if spec.startswith("ref:"):
        return _to_string
    if spec.startswith("enum:"):
        return _enum_converter(spec[5:])
    return _CONVERTERS[spec]


@dataclass(frozen=True)
class Param:
    name: str
    spec: str
    default: Any = MISSING


@dataclass
class Message:
    name: str  # canonical wire name, e.g. "VM.start"
    params: tuple[Param, ...]  # after the session
    handler: Callable[..., Any]  # handler(call, *args); sync or async
    async_capable: bool = False
    session: bool = True  # takes a session ref first
    slave_ok: bool = False  # may run on a pool member (emergency calls)
    timed: bool = False  # takes config.op_duration(s) of simulated time
    required: int = field(init=False)
    converters: tuple[Callable[[Any], Any], ...] = field(init=False)
    is_coroutine: bool = field(init=False)

    def __post_init__(self) -> None:
        self.required = sum(1 for p in self.params if p.default is MISSING)
        self.converters = tuple(converter(p.spec) for p in self.params)
        self.is_coroutine = inspect.iscoroutinefunction(self.handler)

    def bind(self, method: str, args: list[Any]) -> list[Any]:
        """Check the count and convert `args` (session excluded); fill trailing defaults."""
        count = len(args)
        total = len(self.params)
        if count != total and (self.required == total or count < self.required):
            raise XapiFailure("MESSAGE_PARAMETER_COUNT_MISMATCH", method, self.required, count)
        bound = [convert(value) for convert, value in zip(self.converters, args, strict=False)]
        for param in self.params[count:]:
            default = param.default
            bound.append(list(default) if isinstance(default, list) else default)
        return bound


class Registry:
    def __init__(self) -> None:
        self.messages: dict[str, Message] = {}
        self._aliases: dict[str, str] = {}

    def add(
        self,
        name: str,
        params: Sequence[tuple[Any, ...]],  # each Param's fields: (name, spec[, default])
        handler: Callable[..., Any],
        **flags: Any,
    ) -> Message:
        message = Message(name, tuple(Param(*p) for p in params), handler, **flags)
        self.messages[name] = message
        # xapi also accepts `Class_message` for `Class.message` (not for Async).
        self._aliases.setdefault(name.replace(".", "_", 1), name)
        return message

    def lookup(self, name: str, *, alias: bool = True) -> Message | None:
        message = self.messages.get(name)
        if message is None and alias:
            canonical = self._aliases.get(name)
            if canonical is not None:
                message = self.messages[canonical]
        return message

    def wire_names(self) -> list[str]:
        return sorted(self.messages)
