"""The complex-matcher parser: XO's grammar, alternatives and backtracking order, in Python.

A port of the parser combinators of XO's `complex-matcher` npm package: the same
alternatives tried in the same order, so a filter gives the same tree (and the same error
position, in UTF-16 code units) as XO. Patterns (regexps and globs) are compiled while parsing,
so a regexp xod cannot run is a syntax error at its position, and their number per filter is
bounded (each may hold up to `js_regex.PATTERN_MEMORY` bytes).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from xod.filters.js_regex import RegexpError
from xod.filters.js_values import JS_WHITESPACE, js_string_to_number, utf16_length
from xod.filters.nodes import (
    Comparison,
    GlobPattern,
    Node,
    Not,
    Null,
    NumberOrString,
    Property,
    RegExpNode,
    StringNode,
    TruthyProperty,
    is_raw_char,
    make_and,
    make_or,
)

__all__ = ["MAX_PATTERNS", "MAX_PATTERN_TEXT", "MAX_PROGRAM_SIZE", "MatcherSyntaxError", "parse"]

# What one filter's regexps and globs may add up to. Compiling is what they cost before any
# matching, on every xo.getAllObjects call: these bound it to a few tens of milliseconds.
MAX_PATTERNS = 64
MAX_PATTERN_TEXT = 8192  # characters of all the regexp sources and glob words
MAX_PROGRAM_SIZE = 50_000  # RE2 instructions of all the compiled patterns


class MatcherSyntaxError(ValueError):
    """A filter that does not parse. `position` counts UTF-16 code units, as XO reports it."""

    def __init__(self, message: str, position: int, text: str) -> None:
        super().__init__(message)
        self.message = message
        self.position = position
        self.text = text


class _Parser:
    __slots__ = ("end", "pattern_text", "patterns", "program_size", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.end = len(text)
        self.patterns = 0
        self.pattern_text = 0
        self.program_size = 0

    def error(self, message: str, position: int) -> MatcherSyntaxError:
        units = utf16_length(self.text[:position])
        return MatcherSyntaxError(message.replace("{pos}", str(units)), units, self.text)

    def pattern(
        self, build: Callable[[], GlobPattern | RegExpNode], text: str, what: str, position: int
    ) -> Node:
        """A regexp or glob node; a pattern xod cannot run is a syntax error where it fails."""
        self.patterns += 1
        self.pattern_text += len(text)
        if self.patterns > MAX_PATTERNS:
            message = f"too many patterns: a filter holds at most {MAX_PATTERNS} regexps and globs"
            raise self.error(message, position)
        if self.pattern_text > MAX_PATTERN_TEXT:
            message = f"patterns too long: over {MAX_PATTERN_TEXT} characters in one filter"
            raise self.error(message, position)
        try:
            node = build()
        except RegexpError as error:
            raise self.error(f"{what}: {error}", position + error.offset) from None
        self.program_size += node.program_size
        if self.program_size > MAX_PROGRAM_SIZE:
            message = f"patterns too large: over {MAX_PROGRAM_SIZE} RE2 instructions in one filter"
            raise self.error(message, position)
        return node

    def ws(self, pos: int) -> int:
        text, end = self.text, self.end
        while pos < end and text[pos] in JS_WHITESPACE:
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
            glob_node = self.pattern(lambda: GlobPattern(word), word, f"invalid glob {word}", pos)
            return glob_node, after
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
        while pos < end and (is_raw_char(text[pos]) or (allow_star and text[pos] == "*")):
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
        what = f"invalid regular expression: /{source}/"
        return self.pattern(lambda: RegExpNode(source, flags), source, what, start), pos


def parse(text: str) -> Node:
    """Parse a complex-matcher filter; raise MatcherSyntaxError (with `.position`) if invalid."""
    try:
        return _Parser(text).parse()
    except RecursionError:
        raise MatcherSyntaxError("parse error: filter nested too deeply", 0, text) from None
