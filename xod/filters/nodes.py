"""The parsed form of a complex-matcher filter: immutable nodes that match and print.

Each node is one construct of XO's language (its `complex-matcher` npm package), matches a
value with XO's JavaScript semantics (`js_values`), and prints back to the text XO would
print. Matching is a method of the node because every node precomputes what it needs once
(lower-cased needle, compiled RE2 program), so parse once, match many: `node.match(obj)` does
no per-call setup.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from xod.filters.js_regex import Pattern, compile_glob, compile_regexp, normalize_source
from xod.filters.js_values import (
    UNDEFINED,
    is_number,
    js_get,
    js_string_to_number,
    js_to_number,
    js_truthy,
)

__all__ = [
    "And",
    "Comparison",
    "GlobPattern",
    "Node",
    "Not",
    "Null",
    "NumberOrString",
    "Or",
    "Property",
    "RegExpNode",
    "StringNode",
    "TruthyProperty",
    "is_raw_char",
    "make_and",
    "make_or",
]

# ---------------------------------------------------------------------------------------------
# Raw strings and printing

_RAW_SYMBOLS = frozenset("_-.$")


@lru_cache(maxsize=4096)
def is_raw_char(char: str) -> bool:
    # JS tests one UTF-16 code unit: a lone surrogate has no case, so astral letters are not raw.
    if char in _RAW_SYMBOLS or "0" <= char <= "9":
        return True
    return ord(char) <= 0xFFFF and (char.upper() != char or char.lower() != char)


def _is_raw_string(text: str) -> bool:
    return all(is_raw_char(char) for char in text)


def _format_string(value: str) -> str:
    if math.isnan(js_string_to_number(value)):
        if _is_raw_string(value) and value:
            return value
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f'"{value}"'  # numeric text: quoted so that it stays a string, never has `"` or `\`


def _format_number(value: float) -> str:
    """Like JS `String(n)`, but without `+` in exponents (not a raw char, so unparseable)."""
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == int(value) and abs(value) < 1e21:
        return str(int(value))
    return repr(value).replace("e+", "e")


# ---------------------------------------------------------------------------------------------
# AST


class Node:
    """A parsed filter. Nodes are immutable and compare structurally."""

    __slots__ = ()

    def match(self, value: Any) -> bool:
        raise NotImplementedError

    def to_string(self, nested: bool = False) -> str:
        raise NotImplementedError

    def __str__(self) -> str:
        return self.to_string()

    def predicate(self) -> Callable[[Any], bool]:
        return self.match


def _set(node: Node, name: str, value: Any) -> None:
    object.__setattr__(node, name, value)


@dataclass(frozen=True, slots=True)
class Null(Node):
    """The empty filter: matches everything."""

    def match(self, value: Any) -> bool:
        return True

    def to_string(self, nested: bool = False) -> str:
        return ""


def _format_terms(children: tuple[Node, ...]) -> str:
    return " ".join(child.to_string(True) for child in children)


@dataclass(frozen=True, slots=True)
class And(Node):
    children: tuple[Node, ...]

    def match(self, value: Any) -> bool:
        return all(child.match(value) for child in self.children)

    def to_string(self, nested: bool = False) -> str:
        terms = _format_terms(self.children)
        return f"({terms})" if nested else terms


@dataclass(frozen=True, slots=True)
class Or(Node):
    children: tuple[Node, ...]

    def match(self, value: Any) -> bool:
        return any(child.match(value) for child in self.children)

    def to_string(self, nested: bool = False) -> str:
        return f"|({_format_terms(self.children)})"


def make_and(children: list[Node] | tuple[Node, ...]) -> Node:
    """An AND of terms; a single term stands for itself (as XO's `new And([x])` returns `x`)."""
    return children[0] if len(children) == 1 else And(tuple(children))


def make_or(children: list[Node] | tuple[Node, ...]) -> Node:
    return children[0] if len(children) == 1 else Or(tuple(children))


@dataclass(frozen=True, slots=True)
class Not(Node):
    child: Node

    def match(self, value: Any) -> bool:
        return not self.child.match(value)

    def to_string(self, nested: bool = False) -> str:
        return "!" + self.child.to_string(True)


_COMPARATORS: dict[str, Callable[[float, float], bool]] = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


@dataclass(frozen=True, slots=True)
class Comparison(Node):
    """`>N`, `>=N`, `<N`, `<=N`: the object side converted as JavaScript would (`null` is 0)."""

    operator: str
    value: float
    _compare: Callable[[float, float], bool] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.operator not in _COMPARATORS:
            raise ValueError(f"unknown comparison operator {self.operator!r}")
        if not is_number(self.value) or math.isnan(self.value):
            raise TypeError("value must be a number")
        _set(self, "value", float(self.value))
        _set(self, "_compare", _COMPARATORS[self.operator])

    def match(self, value: Any) -> bool:
        if not is_number(value):
            value = js_to_number(value)
        return self._compare(value, self.value)

    def to_string(self, nested: bool = False) -> str:
        return self.operator + _format_number(self.value)


@dataclass(frozen=True, slots=True)
class Property(Node):
    """`name:child`: `child` applied to `value[name]`; false on null/undefined."""

    name: str
    child: Node

    def match(self, value: Any) -> bool:
        if isinstance(value, dict):
            return self.child.match(value.get(self.name, UNDEFINED))
        if value is None or value is UNDEFINED:
            return False
        return self.child.match(js_get(value, self.name))

    def to_string(self, nested: bool = False) -> str:
        return f"{_format_string(self.name)}:{self.child.to_string(True)}"


@dataclass(frozen=True, slots=True)
class TruthyProperty(Node):
    """`name?`: JavaScript `!!value[name]` (empty arrays and objects are truthy)."""

    name: str

    def match(self, value: Any) -> bool:
        if value is None or value is UNDEFINED:
            return False
        return js_truthy(js_get(value, self.name))

    def to_string(self, nested: bool = False) -> str:
        return _format_string(self.name) + "?"


def _some(container: Any, test: Callable[[Any], bool]) -> bool:
    values = container.values() if isinstance(container, dict) else container
    return any(test(item) for item in values)


@dataclass(frozen=True, slots=True)
class StringNode(Node):
    """Case-insensitive substring, searched recursively through arrays and objects."""

    value: str
    _needle: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        _set(self, "_needle", self.value.lower())

    def match(self, value: Any) -> bool:
        if isinstance(value, str):
            return self._needle in value.lower()
        if isinstance(value, dict | list | tuple):
            return _some(value, self.match)
        return False

    def to_string(self, nested: bool = False) -> str:
        return _format_string(self.value)


@dataclass(frozen=True, slots=True)
class NumberOrString(Node):
    """A bare numeric word (`32`): the number strictly, or a string containing the text."""

    value: str
    _needle: str = field(init=False, compare=False, repr=False)
    _number: float = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        number = js_string_to_number(self.value)
        if math.isnan(number):
            raise ValueError(f"{self.value!r} is not a number")
        _set(self, "_needle", self.value.lower())
        _set(self, "_number", number)

    def match(self, value: Any) -> bool:
        if isinstance(value, str):
            return self._needle in value.lower()
        if isinstance(value, dict | list | tuple):
            return _some(value, self.match)
        return is_number(value) and value == self._number

    def to_string(self, nested: bool = False) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class GlobPattern(Node):
    """A word with `*` wildcards: case-insensitive, not anchored, recursive."""

    value: str
    _pattern: Pattern = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if "*" not in self.value:
            raise ValueError("a glob pattern needs a '*' (use StringNode)")
        _set(self, "_pattern", compile_glob(self.value))

    def match(self, value: Any) -> bool:
        if isinstance(value, str):
            return self._pattern.search(value)
        if isinstance(value, dict | list | tuple):
            return _some(value, self.match)
        return False

    def to_string(self, nested: bool = False) -> str:
        return self.value

    @property
    def program_size(self) -> int:
        return self._pattern.size


@dataclass(frozen=True, slots=True)
class RegExpNode(Node):
    """`/source/` or `/source/i`: JavaScript regexp syntax, compiled once to an RE2 program."""

    source: str
    flags: str = ""
    _pattern: Pattern = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.flags not in ("", "i"):
            raise ValueError("only the 'i' flag is supported")
        _set(self, "source", normalize_source(self.source))
        _set(self, "_pattern", compile_regexp(self.source, ignore_case=self.flags == "i"))

    def match(self, value: Any) -> bool:
        if isinstance(value, str):
            return self._pattern.search(value)
        if isinstance(value, dict | list | tuple):
            return _some(value, self.match)
        return False

    def to_string(self, nested: bool = False) -> str:
        return f"/{self.source}/{self.flags}"

    @property
    def program_size(self) -> int:
        return self._pattern.size
