"""JavaScript value semantics on JSON-like Python values, as XO's matcher applies them.

XO's complex-matcher runs in Node.js: a property lookup is `value[name]` (arrays and strings
have `length` and indexes, a missing key is `undefined`, unlike `null`), a comparison converts
its operand with `+x`, a truthiness test is `!!x`, and equality is `===`. These helpers give the
same answers for the values xod holds (dict, list, str, int, float, bool, None).
"""

from __future__ import annotations

import math
import re
from typing import Any, ClassVar


class _Undefined:
    """JavaScript's `undefined`: what `obj[name]` gives for a missing key (unlike `null`)."""

    _instance: ClassVar[_Undefined | None] = None

    def __new__(cls) -> _Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNDEFINED"

    def __bool__(self) -> bool:
        return False


UNDEFINED = _Undefined()

# String.prototype.trim() and the regexp `\s` class: WhiteSpace + LineTerminator.
JS_WHITESPACE = frozenset(
    "\t\n\x0b\x0c\r \xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_JS_WHITESPACE_STR = "".join(sorted(JS_WHITESPACE))
# These patterns run on the filter's own words, never on user-chosen regexps: fixed and linear.
_DECIMAL_LITERAL = re.compile(
    r"[+-]?(?:Infinity|(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)"
)
_RADIX_LITERAL = re.compile(r"0(?:[xX]([0-9a-fA-F]+)|[oO]([0-7]+)|[bB]([01]+))")
_ARRAY_INDEX = re.compile(r"0|[1-9][0-9]*")


def js_string_to_number(text: str) -> float:
    """JavaScript's `+text` for a string (NaN when it is not a numeric literal)."""
    text = text.strip(_JS_WHITESPACE_STR)
    if not text:
        return 0.0
    if _DECIMAL_LITERAL.fullmatch(text):
        return float(text)
    radix = _RADIX_LITERAL.fullmatch(text)
    if radix:
        hexa, octal, binary = radix.groups()
        integer = int(hexa, 16) if hexa else int(octal, 8) if octal else int(binary, 2)
        try:
            return float(integer)
        except OverflowError:
            return math.inf
    return math.nan


def js_to_number(value: Any) -> float:
    """JavaScript's ToNumber, as `a > b` applies it to the object side of a comparison."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return value
    if value is None:
        return 0.0
    if isinstance(value, str):
        return js_string_to_number(value)
    if isinstance(value, list | tuple):
        # ToPrimitive joins the elements with ","; a comma never parses as a number.
        if not value:
            return 0.0
        if len(value) > 1:
            return math.nan
        (element,) = value
        if element is None or element is UNDEFINED:
            return 0.0
        if isinstance(element, bool | dict):
            return math.nan
        return js_to_number(element)
    return math.nan  # undefined, plain objects ("[object Object]")


def js_truthy(value: Any) -> bool:
    """JavaScript's `!!value`."""
    if value is None or value is UNDEFINED:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value == value and value != 0  # NaN and ±0 are falsy
    if isinstance(value, str):
        return value != ""
    return True  # [] and {} are truthy in JavaScript


def is_number(value: Any) -> bool:
    """A JavaScript number: int or float, but not bool (Python's bool is an int)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def utf16_length(text: str) -> int:
    """JavaScript's `text.length`: UTF-16 code units (an astral character counts two)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def js_get(value: Any, name: str) -> Any:
    """JavaScript's `value[name]` for JSON-like values (arrays and strings have `length`)."""
    if isinstance(value, dict):
        return value.get(name, UNDEFINED)
    if isinstance(value, list | tuple):
        if name == "length":
            return len(value)
        if _ARRAY_INDEX.fullmatch(name):
            index = int(name)
            return value[index] if index < len(value) else UNDEFINED
        return UNDEFINED
    if isinstance(value, str):
        units = value.encode("utf-16-le", "surrogatepass")
        if name == "length":
            return len(units) // 2
        if _ARRAY_INDEX.fullmatch(name):
            index = int(name) * 2
            if index < len(units):
                return units[index : index + 2].decode("utf-16-le", "surrogatepass")
        return UNDEFINED
    return UNDEFINED


def js_strict_equal(a: Any, b: Any) -> bool:
    """JavaScript `===` on JSON values (true !== 1)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or (isinstance(a, bool) and isinstance(b, bool) and a == b)
    if is_number(a):
        return is_number(b) and a == b
    if isinstance(a, str):
        return isinstance(b, str) and a == b
    return a is b
