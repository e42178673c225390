"""Xen Orchestra's complex-matcher filter language, and lodash-style partial object matching.

A faithful port of `packages/complex-matcher/index.js` (the `filter` of the REST API and the
string form of `xo.getAllObjects`' filter): the same grammar, the same backtracking order, the
same printing, and the same JavaScript value semantics when matching (strict equality, `+x`
number conversion, truthiness, `obj[name]` on arrays and strings). See
shared/reference/xo-rest.md §4.

Parse once, match many: every node precomputes what it needs (lower-cased needle, compiled
regular expression) at construction, so `node.match(obj)` does no per-call setup.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, ClassVar

__all__ = [
    "UNDEFINED",
    "And",
    "Comparison",
    "GlobPattern",
    "MatcherSyntaxError",
    "Node",
    "Not",
    "Null",
    "NumberOrString",
    "Or",
    "Property",
    "RegExpNode",
    "StringNode",
    "TruthyProperty",
    "compile_filter",
    "parse",
    "partial_match",
]


class MatcherSyntaxError(ValueError):
    """A filter that does not parse. `position` counts UTF-16 code units, as XO reports it."""

    def __init__(self, message: str, position: int, text: str) -> None:
        super().__init__(message)
        self.message = message
        self.position = position
        self.text = text


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

# ---------------------------------------------------------------------------------------------
# JavaScript value semantics

# String.prototype.trim() and the regexp `\s` class: WhiteSpace + LineTerminator.
_JS_WHITESPACE = frozenset(
    "\t\n\x0b\x0c\r \xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_JS_WHITESPACE_STR = "".join(sorted(_JS_WHITESPACE))
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


def _js_to_number(value: Any) -> float:
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
        return _js_to_number(element)
    return math.nan  # undefined, plain objects ("[object Object]")


def _js_truthy(value: Any) -> bool:
    if value is None or value is UNDEFINED:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value == value and value != 0  # NaN and ±0 are falsy
    if isinstance(value, str):
        return value != ""
    return True  # [] and {} are truthy in JavaScript


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _utf16_units(text: str) -> bytes:
    return text.encode("utf-16-le", "surrogatepass")


def _js_get(value: Any, name: str) -> Any:
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
        units = _utf16_units(value)
        if name == "length":
            return len(units) // 2
        if _ARRAY_INDEX.fullmatch(name):
            index = int(name) * 2
            if index < len(units):
                return units[index : index + 2].decode("utf-16-le", "surrogatepass")
        return UNDEFINED
    return UNDEFINED


# ---------------------------------------------------------------------------------------------
# Raw strings and printing

_RAW_SYMBOLS = frozenset("_-.$")


@lru_cache(maxsize=4096)
def _is_raw_char(char: str) -> bool:
    # JS tests one UTF-16 code unit: a lone surrogate has no case, so astral letters are not raw.
    if char in _RAW_SYMBOLS or "0" <= char <= "9":
        return True
    return ord(char) <= 0xFFFF and (char.upper() != char or char.lower() != char)


def _is_raw_string(text: str) -> bool:
    return all(_is_raw_char(char) for char in text)


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
        if not _is_number(self.value) or math.isnan(self.value):
            raise TypeError("value must be a number")
        _set(self, "value", float(self.value))
        _set(self, "_compare", _COMPARATORS[self.operator])

    def match(self, value: Any) -> bool:
        if not _is_number(value):
            value = _js_to_number(value)
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
        return self.child.match(_js_get(value, self.name))

    def to_string(self, nested: bool = False) -> str:
        return f"{_format_string(self.name)}:{self.child.to_string(True)}"


@dataclass(frozen=True, slots=True)
class TruthyProperty(Node):
    """`name?`: JavaScript `!!value[name]` (empty arrays and objects are truthy)."""

    name: str

    def match(self, value: Any) -> bool:
        if value is None or value is UNDEFINED:
            return False
        return _js_truthy(_js_get(value, self.name))

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
        return _is_number(value) and value == self._number

    def to_string(self, nested: bool = False) -> str:
        return self.value


# `.` in a JavaScript regexp excludes every line terminator, Python's only "\n".
_JS_DOT = "[^\\n\\r\\u2028\\u2029]"


@dataclass(frozen=True, slots=True)
class GlobPattern(Node):
    """A word with `*` wildcards: case-insensitive, not anchored, recursive."""

    value: str
    _regex: re.Pattern[str] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if "*" not in self.value:
            raise ValueError("a glob pattern needs a '*' (use StringNode)")
        pattern = (_JS_DOT + "*").join(re.escape(part) for part in self.value.split("*"))
        _set(self, "_regex", re.compile(pattern, re.IGNORECASE))

    def match(self, value: Any) -> bool:
        if isinstance(value, str):
            return self._regex.search(value) is not None
        if isinstance(value, dict | list | tuple):
            return _some(value, self.match)
        return False

    def to_string(self, nested: bool = False) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class RegExpNode(Node):
    """`/source/` or `/source/i`: JavaScript regexp semantics, translated once to Python's."""

    source: str
    flags: str = ""
    _regex: re.Pattern[str] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.flags not in ("", "i"):
            raise ValueError("only the 'i' flag is supported")
        _set(self, "source", _normalize_regexp_source(self.source))
        translated = translate_js_regexp(self.source)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # FutureWarning on sets like "[[" or "--"
            compiled = re.compile(translated, re.IGNORECASE if self.flags else 0)
        _set(self, "_regex", compiled)

    def match(self, value: Any) -> bool:
        if isinstance(value, str):
            return self._regex.search(value) is not None
        if isinstance(value, dict | list | tuple):
            return _some(value, self.match)
        return False

    def to_string(self, nested: bool = False) -> str:
        return f"/{self.source}/{self.flags}"


def _normalize_regexp_source(source: str) -> str:
    """What JS `RegExp.prototype.source` shows: `(?:)` when empty, every `/` escaped."""
    if not source:
        return "(?:)"
    trailing = len(source) - len(source.rstrip("\\"))
    if trailing and trailing % 2 == 0:
        # XO's scanner would read `\\/` as an escaped slash: end with `[\\]` (same meaning).
        source = source[:-2] + "[\\\\]"
    if "/" not in source:
        return source
    out = []
    previous = ""
    for char in source:
        if char == "/" and previous != "\\":
            out.append("\\")
        out.append(char)
        previous = char
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# JavaScript regexp (non-unicode mode, Annex B) → Python `re`

_WORD = "A-Za-z0-9_"
_NOT_WORD = "\\x00-\\x2f\\x3a-\\x40\\x5b-\\x5e\\x60\\x7b-\\U0010ffff"
_DIGIT = "0-9"
_NOT_DIGIT = "\\x00-\\x2f\\x3a-\\U0010ffff"
_SPACE = "\\t\\n\\x0b\\x0c\\r \\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff"
_NOT_SPACE = (
    "\\x00-\\x08\\x0e-\\x1f\\x21-\\x9f\\xa1-\\u167f\\u1681-\\u1fff\\u200b-\\u2027"
    "\\u202a-\\u202e\\u2030-\\u205e\\u2060-\\u2fff\\u3001-\\ufefe\\uff00-\\U0010ffff"
)
# Scoped `(?-i:…)`: Python's IGNORECASE folds "K" (Kelvin) into k and "ſ" into s, JS does not.
_CLASS_ESCAPES = {
    "d": (_DIGIT, "[0-9]"),
    "D": (_NOT_DIGIT, f"[{_NOT_DIGIT}]"),
    "w": (_WORD, f"(?-i:[{_WORD}])"),
    "W": (_NOT_WORD, f"(?-i:[{_NOT_WORD}])"),
    "s": (_SPACE, f"[{_SPACE}]"),
    "S": (_NOT_SPACE, f"[{_NOT_SPACE}]"),
}
_WORD_BOUNDARY = f"(?-i:(?:(?<=[{_WORD}])(?![{_WORD}])|(?<![{_WORD}])(?=[{_WORD}])))"
_NOT_WORD_BOUNDARY = f"(?-i:(?:(?<=[{_WORD}])(?=[{_WORD}])|(?<![{_WORD}])(?![{_WORD}])))"
_CONTROL_ESCAPES = {"f": "\\f", "n": "\\n", "r": "\\r", "t": "\\t", "v": "\\x0b"}
_QUANTIFIER_BRACES = re.compile(r"\{[0-9]+(?:,[0-9]*)?\}")
_HEX2 = re.compile(r"[0-9a-fA-F]{2}")
_HEX4 = re.compile(r"[0-9a-fA-F]{4}")
_GROUP_NAME = re.compile(r"<([A-Za-z_$][A-Za-z0-9_$]*)>")


def _count_groups(source: str) -> tuple[int, bool]:
    count = 0
    named = False
    in_class = False
    i = 0
    while i < len(source):
        char = source[i]
        if char == "\\":
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "(":
            if not source.startswith("?", i + 1):
                count += 1
            elif source.startswith("?<", i + 1) and not source.startswith(("?<=", "?<!"), i + 1):
                count += 1
                named = True
        i += 1
    return count, named


def _legacy_octal(source: str, i: int) -> tuple[str, int]:
    """Annex B `\\NNN` octal escape (or identity escape of 8/9) starting at the digit `i`."""
    if source[i] in "89":
        return source[i], i + 1
    digits = source[i]
    j = i + 1
    limit = 3 if source[i] <= "3" else 2
    while j < len(source) and len(digits) < limit and "0" <= source[j] <= "7":
        digits += source[j]
        j += 1
    return f"\\x{int(digits, 8):02x}", j


def _translate_escape(
    source: str, i: int, in_class: bool, groups: int, named: bool
) -> tuple[str, int]:
    """Translate the escape at `source[i] == '\\'`; return the Python text and the next index."""
    if i + 1 >= len(source):
        raise ValueError("\\ at end of pattern")
    char = source[i + 1]
    if char in _CLASS_ESCAPES:
        inside, outside = _CLASS_ESCAPES[char]
        return (inside if in_class else outside), i + 2
    if char == "b":
        return ("\\x08" if in_class else _WORD_BOUNDARY), i + 2
    if char == "B" and not in_class:
        return _NOT_WORD_BOUNDARY, i + 2
    if char in _CONTROL_ESCAPES:
        return _CONTROL_ESCAPES[char], i + 2
    if char == "c":
        letter = source[i + 2 : i + 3]
        if letter.isascii() and letter.isalpha():
            return f"\\x{ord(letter) % 32:02x}", i + 3
        return "\\\\", i + 1  # Annex B: a lone `\c` is a literal backslash
    if char == "x" and _HEX2.match(source, i + 2):
        return "\\x" + source[i + 2 : i + 4], i + 4
    if char == "u" and _HEX4.match(source, i + 2):
        return "\\u" + source[i + 2 : i + 6], i + 6
    if char == "k" and named and not in_class:
        name = _GROUP_NAME.match(source, i + 2)
        if not name:
            raise ValueError("invalid named reference")
        return f"(?P={name.group(1)})", name.end()
    if char == "0" and not source[i + 2 : i + 3].isdigit():
        return "\\x00", i + 2
    if "0" <= char <= "9":
        j = i + 1
        while j < len(source) and "0" <= source[j] <= "9":
            j += 1
        number = int(source[i + 1 : j])
        if not in_class and char != "0" and number <= groups:
            return f"(?:\\{number})", j
        return _legacy_octal(source, i + 1)
    return re.escape(char), i + 2  # identity escape (Annex B allows letters: `\a` is "a")


def translate_js_regexp(source: str) -> str:
    """Translate a JavaScript regexp source to an equivalent Python pattern.

    Raises ValueError for what JavaScript would reject as well as for Python-only syntax
    (inline flags, possessive quantifiers, atomic groups) that JS does not accept.
    """
    groups, named = _count_groups(source)
    out: list[str] = []
    in_class = False
    quantified = 0  # 0: last token not a quantifier, 1: after a quantifier, 2: after lazy `?`
    i = 0
    length = len(source)
    while i < length:
        char = source[i]
        if char == "\\":
            text, i = _translate_escape(source, i, in_class, groups, named)
            out.append(text)
            quantified = 0
            continue
        if in_class:
            if char == "]":
                in_class = False
                out.append("]")
            else:
                out.append("\\" + char if char in "[&~|" else char)
            i += 1
            continue
        is_quantifier = char in "*+?"
        braces = _QUANTIFIER_BRACES.match(source, i) if char == "{" else None
        if is_quantifier or braces:
            if quantified == 1 and char == "?":
                quantified = 2
            elif quantified:
                raise ValueError("nothing to repeat")
            else:
                quantified = 1
            text = braces.group(0) if braces else char
            out.append(text)
            i += len(text)
            continue
        quantified = 0
        if char == "[":
            if source.startswith("[]", i):
                out.append("[^\\s\\S]")  # JS: an empty class never matches
                i += 2
            elif source.startswith("[^]", i):
                out.append("[\\s\\S]")  # JS: any character
                i += 3
            else:
                in_class = True
                out.append("[")
                i += 1
                if source.startswith("^", i):
                    out.append("^")
                    i += 1
            continue
        if char == "(" and source.startswith("?", i + 1):
            if source.startswith(("?:", "?=", "?!"), i + 1):
                out.append(source[i : i + 3])
                i += 3
            elif source.startswith(("?<=", "?<!"), i + 1):
                out.append(source[i : i + 4])
                i += 4
            else:
                name = _GROUP_NAME.match(source, i + 2)
                if not name:
                    raise ValueError("invalid group")
                out.append(f"(?P<{name.group(1)}>")
                i = name.end()
            continue
        if char == ".":
            out.append(_JS_DOT)
        elif char == "$":
            out.append("(?!(?s:.))")  # JS `$` is the very end; Python's also before a final \n
        elif char in "{}":
            out.append("\\" + char)  # Annex B: a brace that is not a quantifier is literal
        else:
            out.append(char)
        i += 1
    if in_class:
        raise ValueError("unterminated character class")
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# Parser: same alternatives, same order and same backtracking as XO's parser combinators.


class _Parser:
    __slots__ = ("end", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.end = len(text)

    def error(self, message: str, position: int) -> MatcherSyntaxError:
        units = len(_utf16_units(self.text[:position])) // 2
        return MatcherSyntaxError(message.replace("{pos}", str(units)), units, self.text)

    def ws(self, pos: int) -> int:
        text, end = self.text, self.end
        while pos < end and text[pos] in _JS_WHITESPACE:
            pos += 1
        return pos

    def parse(self) -> Node:
        terms, pos = self.terms(self.ws(0))
        if pos < self.end:
            raise self.error("parse error: expected end of input at position {pos}", pos)
        return make_and(terms) if terms else Null()

    def terms(self, pos: int) -> tuple[list[Node], int]:
        terms: list[Node] = []
        while (result := self.term(pos)) is not None:
            node, pos = result
            terms.append(node)
        return terms, pos

    def term(self, pos: int) -> tuple[Node, int] | None:
        result = self.term_alternatives(pos)
        if result is None:
            return None
        return result[0], self.ws(result[1])

    def term_alternatives(self, pos: int) -> tuple[Node, int] | None:
        text, end = self.text, self.end
        if pos >= end:
            return None
        char = text[pos]
        if char == "(":
            terms, after = self.terms(self.ws(pos + 1))
            if terms and after < end and text[after] == ")":
                return make_and(terms), after + 1
        elif char == "|":
            after = self.ws(pos + 1)
            if after < end and text[after] == "(":
                terms, after = self.terms(self.ws(after + 1))
                if terms and after < end and text[after] == ")":
                    return make_or(terms), after + 1
        elif char == "!":
            result = self.term(self.ws(pos + 1))
            if result is not None:
                return Not(result[0]), result[1]
        elif char in "<>":
            operator_end = pos + 2 if text.startswith("=", pos + 1) else pos + 1
            raw = self.raw_string(operator_end)
            if raw is not None:
                number = js_string_to_number(raw[0])
                if math.isnan(number):
                    raise self.error("value must be a number", operator_end)
                return Comparison(text[pos:operator_end], number), raw[1]
        name = self.property_name(pos)
        if name is not None:
            after = self.ws(name[1])
            if after < end and text[after] == ":":
                result = self.term(self.ws(after + 1))
                if result is not None:
                    return Property(name[0], result[0]), result[1]
            if name[1] < end and text[name[1]] == "?":
                return TruthyProperty(name[0]), name[1] + 1
        return self.value(pos)

    def property_name(self, pos: int) -> tuple[str, int] | None:
        return self.quoted_string(pos) or self.raw_string(pos)

    def value(self, pos: int) -> tuple[Node, int] | None:
        quoted = self.quoted_string(pos)
        if quoted is not None:
            return StringNode(quoted[0]), quoted[1]
        regexp = self.regexp(pos)
        if regexp is not None:
            return regexp
        glob = self.raw_string(pos, allow_star=True)
        if glob is None:
            return None
        word, after = glob
        if not math.isnan(js_string_to_number(word)):
            return NumberOrString(word), after
        if "*" in word:
            return GlobPattern(word), after
        return StringNode(word), after

    def quoted_string(self, pos: int) -> tuple[str, int] | None:
        text, end = self.text, self.end
        if pos >= end or text[pos] != '"':
            return None
        pos += 1
        chars: list[str] = []
        while pos < end:
            char = text[pos]
            pos += 1
            if char == '"':
                break
            if char == "\\":
                if pos < end:
                    chars.append(text[pos])
                pos += 1  # a trailing backslash escapes nothing (JS joins `undefined` as "")
                continue
            chars.append(char)
        return "".join(chars), min(pos, end)

    def raw_string(self, pos: int, allow_star: bool = False) -> tuple[str, int] | None:
        text, end = self.text, self.end
        start = pos
        while pos < end and (_is_raw_char(text[pos]) or (allow_star and text[pos] == "*")):
            pos += 1
        return (text[start:pos], pos) if pos > start else None

    def regexp(self, pos: int) -> tuple[Node, int] | None:
        text, end = self.text, self.end
        if pos >= end or text[pos] != "/":
            return None
        start = pos + 1
        pos = start
        escaped = False
        closed = False
        # XO's scanner: a `/` ends the pattern unless the previous char is a backslash.
        while pos < end:
            char = text[pos]
            pos += 1
            if char == "/" and not escaped:
                closed = True
                break
            escaped = char == "\\"
        if not closed:
            return None
        source = text[start : pos - 1]
        flags = ""
        if pos < end and text[pos] == "i":
            flags = "i"
            pos += 1
        try:
            return RegExpNode(source, flags), pos
        except (ValueError, re.error) as error:
            raise self.error(f"invalid regular expression: /{source}/: {error}", start) from None


def parse(text: str) -> Node:
    """Parse a complex-matcher filter; raise MatcherSyntaxError (with `.position`) if invalid."""
    try:
        return _Parser(text).parse()
    except RecursionError:
        raise MatcherSyntaxError("parse error: filter nested too deeply", 0, text) from None


# ---------------------------------------------------------------------------------------------
# lodash `_.matches` (xo.getAllObjects' object filter)


def _strict_equal(a: Any, b: Any) -> bool:
    """JavaScript `===` on JSON values (true !== 1)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or (isinstance(a, bool) and isinstance(b, bool) and a == b)
    if _is_number(a):
        return _is_number(b) and a == b
    if isinstance(a, str):
        return isinstance(b, str) and a == b
    return a is b


def _partial_equal(source: Any, target: Any) -> bool:
    """lodash baseIsEqual with PARTIAL|UNORDERED flags."""
    if isinstance(source, dict):
        if not isinstance(target, dict):
            return False
        for key, expected in source.items():
            if key not in target or not _partial_equal(expected, target[key]):
                return False
        return True
    if isinstance(source, list | tuple):
        if not isinstance(target, list | tuple) or len(target) < len(source):
            return False
        # Each expected element claims the first unclaimed equal element (lodash is greedy).
        claimed: set[int] = set()
        for expected in source:
            for index, actual in enumerate(target):
                if index not in claimed and _partial_equal(expected, actual):
                    claimed.add(index)
                    break
            else:
                return False
        return True
    if _strict_equal(source, target):
        return True
    # NaN equals NaN in lodash's isEqual.
    return (
        isinstance(source, float)
        and isinstance(target, float)
        and math.isnan(source)
        and math.isnan(target)
    )


def partial_match(filter_object: Mapping[str, Any], obj: Any) -> bool:
    """lodash `_.matches(filter_object)(obj)`: every key of the filter deep-partially matches.

    Primitives compare with `===`, nested objects recursively, arrays match when the object's
    array contains every given element ({"tags": ["prod"]} matches tags ["prod", "web"]).
    """
    if not isinstance(obj, dict):
        return not filter_object  # XO objects are dicts; an empty filter matches anything
    for key, expected in filter_object.items():
        if key not in obj or not _partial_equal(expected, obj[key]):
            return False
    return True


def compile_filter(filter_spec: str | Mapping[str, Any] | None) -> Callable[[Any], bool]:
    """A predicate for xo.getAllObjects' `filter`: string → complex matcher, object → partial."""
    if filter_spec is None:
        return lambda obj: True
    if isinstance(filter_spec, str):
        return parse(filter_spec).match
    frozen = dict(filter_spec)
    return lambda obj: partial_match(frozen, obj)
