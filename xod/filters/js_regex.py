"""JavaScript regular expressions and XO's glob words, run by RE2 in time linear in the input.

XO evaluates a filter's `/source/flags` with Node.js's `new RegExp(source, flags)`, a
backtracking engine: `/(a+)+$/` against "aaa…!" takes time exponential in the input. xod
translates the JavaScript syntax (non-unicode mode with the web extensions of ECMAScript's
Annex B: `\\a` is "a", `\\101` is octal, a `{` that starts no quantifier is literal) into RE2's,
whose matching time is linear in the input whatever the pattern. What RE2 cannot run
(backreferences, lookahead, lookbehind) is refused with an error naming the construct, and a
pattern is bounded in length and in compiled size, so a filter cannot take unbounded time or
memory.
"""

from __future__ import annotations

import re

import re2
from re2 import _re2

from xod.filters.js_case import Ranges, char_variants, fold_ranges, merge_ranges

__all__ = [
    "MAX_REPEAT",
    "MAX_SOURCE_LENGTH",
    "PATTERN_MEMORY",
    "Pattern",
    "RegexpError",
    "compile_glob",
    "compile_regexp",
    "normalize_source",
]

MAX_SOURCE_LENGTH = 4096  # characters of one regexp's source
MAX_REPEAT = 1000  # RE2's largest `{n,m}` count (a nested repetition's product is capped too)
PATTERN_MEMORY = 1 << 20  # RE2's max_mem: compiled program plus its lazily built DFA


class RegexpError(ValueError):
    """A regexp JavaScript would reject, or that RE2 cannot run; `offset` indexes the source."""

    def __init__(self, message: str, offset: int = 0) -> None:
        super().__init__(message)
        self.offset = offset


_UNANCHORED = _re2.RE2.Anchor.UNANCHORED


class Pattern:
    """A compiled pattern that answers one question: does it match somewhere in a string?
    `size` measures its compiled program (RE2 instructions), which its compile time follows."""

    __slots__ = ("size",)
    size: int

    def search(self, text: str) -> bool:
        raise NotImplementedError


class _Re2Pattern(Pattern):
    __slots__ = ("_program",)

    def __init__(self, translated: str) -> None:
        options = re2.Options()
        options.never_capture = True  # only "is there a match" is asked: no submatch tracking
        # Always case-sensitive: the `i` flag is spelled out in the translation (see js_case).
        options.max_mem = PATTERN_MEMORY
        options.log_errors = False  # a bad pattern is the caller's input, reported to them
        # The binding's own RE2 object: `re2.compile(...).search` builds a match object and an
        # offset map per call, about 3x slower on the short strings filters test.
        program = _re2.RE2(translated.encode(), options)
        if not program.ok():
            error = program.error().decode(errors="replace")
            if "too large" in error:
                error = f"pattern too large (compiled size over {PATTERN_MEMORY >> 10} KiB)"
            raise RegexpError(error)
        self._program = program
        self.size = program.ProgramSize()

    def search(self, text: str) -> bool:
        encoded = text.encode("utf-8", "surrogatepass")
        found: bool = self._program.Match(_UNANCHORED, encoded, 0, len(encoded))[0][0] >= 0
        return found


# Letters, digits and punctuation that mean themselves in a JavaScript regexp.
_ASCII_LITERAL = re.compile(r"[-A-Za-z0-9 _,:;=!<>@#%&'\"~]+")


class _AsciiLiteral(Pattern):
    """A regexp that is plain ASCII text (`/debian/i`, common in filters): a substring test,
    several times cheaper than a call into RE2. Under `i`, JavaScript matches an ASCII letter
    only with its ASCII other case, which `bytes.lower()` gives (it leaves other bytes alone)."""

    __slots__ = ("_ignore_case", "_needle", "_needle_bytes")

    def __init__(self, needle: str, ignore_case: bool) -> None:
        self._ignore_case = ignore_case
        self._needle = needle
        self.size = len(needle)
        self._needle_bytes = needle.lower().encode()

    def search(self, text: str) -> bool:
        if not self._ignore_case:
            return self._needle in text
        return self._needle_bytes in text.encode("utf-8", "surrogatepass").lower()


# --- character sets, as sorted (first, last) code point ranges ------------------------------

_MAX_CODE_POINT = 0x10FFFF


def _complement(ranges: Ranges) -> Ranges:
    result = []
    start = 0
    for first, last in ranges:
        if first > start:
            result.append((start, first - 1))
        start = last + 1
    if start <= _MAX_CODE_POINT:
        result.append((start, _MAX_CODE_POINT))
    return tuple(result)


_DIGIT: Ranges = ((0x30, 0x39),)
_WORD: Ranges = ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A))
# JavaScript's `\s`: WhiteSpace + LineTerminator (RE2's `\s` is ASCII only).
_SPACE: Ranges = (
    (0x09, 0x0D),
    (0x20, 0x20),
    (0xA0, 0xA0),
    (0x1680, 0x1680),
    (0x2000, 0x200A),
    (0x2028, 0x2029),
    (0x202F, 0x202F),
    (0x205F, 0x205F),
    (0x3000, 0x3000),
    (0xFEFF, 0xFEFF),
)
_LINE_TERMINATORS: Ranges = ((0x0A, 0x0A), (0x0D, 0x0D), (0x2028, 0x2029))
_CLASS_ESCAPES: dict[str, Ranges] = {
    "d": _DIGIT,
    "D": _complement(_DIGIT),
    "w": _WORD,
    "W": _complement(_WORD),
    "s": _SPACE,
    "S": _complement(_SPACE),
}
_CONTROL_ESCAPES = {"f": 0x0C, "n": 0x0A, "r": 0x0D, "t": 0x09, "v": 0x0B}


def _char(code: int) -> str:
    """One code point in RE2 syntax, literal both inside and outside a character class."""
    if code < 0x80 and chr(code).isalnum():
        return chr(code)
    return f"\\x{{{code:x}}}"


def _class(ranges: Ranges, negated: bool = False) -> str:
    if not ranges:  # JavaScript's `[]` never matches, `[^]` matches any character
        return "[\\x{0}-\\x{10ffff}]" if negated else "[^\\x{0}-\\x{10ffff}]"
    merged = merge_ranges(ranges)
    body = "".join(_char(a) if a == b else f"{_char(a)}-{_char(b)}" for a, b in merged)
    return f"[{'^' if negated else ''}{body}]"


# JavaScript's `.` excludes every line terminator, not only "\n".
_DOT = _class(_LINE_TERMINATORS, negated=True)


def _literal(code: int, ignore_case: bool) -> str:
    variants = char_variants(code) if ignore_case else (code,)
    return _char(code) if len(variants) == 1 else _class(tuple((v, v) for v in variants))


# --- the translator ---------------------------------------------------------------------------

_QUANTIFIER_BRACES = re.compile(r"\{([0-9]+)(?:,([0-9]*))?\}")
_HEX2 = re.compile(r"[0-9a-fA-F]{2}")
_HEX4 = re.compile(r"[0-9a-fA-F]{4}")
_GROUP_NAME = re.compile(r"<([A-Za-z_$][A-Za-z0-9_$]*)>")
_UNSUPPORTED_GROUPS = {
    "(?=": "lookahead (?=…)",
    "(?!": "negative lookahead (?!…)",
    "(?<=": "lookbehind (?<=…)",
    "(?<!": "negative lookbehind (?<!…)",
}
_NOT_LINEAR = "is not supported: xod runs regular expressions in linear time (RE2)"

# `$` is the very end of the input in JavaScript (without the `m` flag, which XO never passes).
_NOT_REPEATABLE = {"|": "|", "^": "^", "$": "\\z"}
# What the last token allows next: a quantifier only after an atom, a lazy `?` only after one.
_NOTHING, _ATOM, _QUANTIFIED, _LAZY = range(4)


def _scan_groups(source: str) -> tuple[int, bool]:
    """The number of capturing groups and whether any is named (it changes what `\\k` means)."""
    count = 0
    names: set[str] = set()
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
                name = _GROUP_NAME.match(source, i + 2)
                if name and name.group(1) in names:
                    raise RegexpError(f"duplicate group name {name.group(1)!r}", i)
                names.add(name.group(1) if name else "")
        i += 1
    return count, bool(names)


class _Translator:
    __slots__ = ("groups", "ignore_case", "named", "out", "pos", "source")

    def __init__(self, source: str, ignore_case: bool) -> None:
        self.source = source
        self.ignore_case = ignore_case
        self.groups, self.named = _scan_groups(source)
        self.out: list[str] = []
        self.pos = 0

    def translate(self) -> str:
        source, out = self.source, self.out
        state = _NOTHING
        while self.pos < len(source):
            char = source[self.pos]
            braces = _QUANTIFIER_BRACES.match(source, self.pos) if char == "{" else None
            if char in "*+?" or braces:
                state = self.quantifier(state, braces)
            elif char == "\\":
                state = self.escape()
            elif char == "[":
                out.append(self.character_class())
                state = _ATOM
            elif char == "(":
                self.group()
                state = _NOTHING
            elif char in _NOT_REPEATABLE:
                out.append(_NOT_REPEATABLE[char])
                self.pos += 1
                state = _NOTHING
            else:
                text = _DOT if char == "." else ")" if char == ")" else None
                out.append(text or _literal(ord(char), self.ignore_case))
                self.pos += 1
                state = _ATOM
        return "".join(out)

    def quantifier(self, state: int, braces: re.Match[str] | None) -> int:
        if state == _QUANTIFIED and not braces and self.source[self.pos] == "?":
            self.out.append("?")
            self.pos += 1
            return _LAZY
        if state != _ATOM:
            raise RegexpError("nothing to repeat", self.pos)
        if braces:
            low, high = braces.groups()
            if high and int(high) < int(low):
                raise RegexpError("numbers out of order in {} quantifier", self.pos)
            if int(low) > MAX_REPEAT or (high and int(high) > MAX_REPEAT):
                raise RegexpError(f"a repetition count over {MAX_REPEAT} {_NOT_LINEAR}", self.pos)
            self.out.append(braces.group(0))
            self.pos = braces.end()
        else:
            self.out.append(self.source[self.pos])
            self.pos += 1
        return _QUANTIFIED

    def group(self) -> None:
        source, pos = self.source, self.pos
        if not source.startswith("(?", pos):
            self.out.append("(")
            self.pos += 1
            return
        for opening, construct in _UNSUPPORTED_GROUPS.items():
            if source.startswith(opening, pos):
                raise RegexpError(f"{construct} {_NOT_LINEAR}", pos)
        if source.startswith("(?:", pos):
            self.pos += 3
        else:
            name = _GROUP_NAME.match(source, pos + 2)
            if not name:
                raise RegexpError("invalid group", pos)
            self.pos = name.end()  # no capture is reported, so a name needs no translation
        self.out.append("(?:")

    def escape(self) -> int:
        """The escape at `source[pos] == '\\'` outside a class; returns the state after it."""
        source, start = self.source, self.pos
        if start + 1 >= len(source):
            raise RegexpError("\\ at end of pattern", start)
        letter = source[start + 1]
        if letter in _CLASS_ESCAPES:
            self.out.append(self.char_set(_CLASS_ESCAPES[letter]))
            self.pos += 2
            return _ATOM
        if letter in "bB":
            self.out.append("\\" + letter)  # RE2's word boundaries are ASCII, as JavaScript's
            self.pos += 2
            return _NOTHING
        if letter == "k" and self.named:
            name = _GROUP_NAME.match(source, start + 2)
            if not name:
                raise RegexpError("invalid named reference", start)
            raise RegexpError(f"backreference \\k{name.group(0)} {_NOT_LINEAR}", start)
        if "1" <= letter <= "9":
            end = start + 2
            while end < len(source) and "0" <= source[end] <= "9":
                end += 1
            number = int(source[start + 1 : end])
            if number <= self.groups:
                raise RegexpError(f"backreference \\{number} {_NOT_LINEAR}", start)
        self.out.append(_literal(self.character_escape(), self.ignore_case))
        return _ATOM

    def character_escape(self, in_class: bool = False) -> int:
        """The code point of a character escape at `pos` (Annex B rules); advances `pos`."""
        source, start = self.source, self.pos
        if start + 1 >= len(source):
            raise RegexpError("\\ at end of pattern", start)
        letter = source[start + 1]
        self.pos = start + 2
        if letter in _CONTROL_ESCAPES:
            return _CONTROL_ESCAPES[letter]
        if letter == "b" and in_class:
            return 0x08
        if letter == "c":
            control = source[start + 2 : start + 3]
            in_class_only = in_class and control != "" and control in "0123456789_"
            if control.isascii() and (control.isalpha() or in_class_only):
                self.pos = start + 3
                return ord(control) % 32
            self.pos = start + 1  # Annex B: a lone `\c` is a backslash, then a literal "c"
            return 0x5C
        if letter == "x" and _HEX2.match(source, start + 2):
            self.pos = start + 4
            return int(source[start + 2 : start + 4], 16)
        if letter == "u" and _HEX4.match(source, start + 2):
            self.pos = start + 6
            return int(source[start + 2 : start + 6], 16)
        if letter == "0" and not source[start + 2 : start + 3].isdigit():
            return 0
        if "0" <= letter <= "7":  # Annex B legacy octal: up to 0o377
            end = start + 2
            limit = start + (4 if letter <= "3" else 3)
            while end < min(limit, len(source)) and "0" <= source[end] <= "7":
                end += 1
            self.pos = end
            return int(source[start + 1 : end], 8)
        return ord(letter)  # identity escape: `\8`, `\/`, and (Annex B) letters: `\a` is "a"

    def class_atom(self) -> int | Ranges:
        source, pos = self.source, self.pos
        if source[pos] != "\\":
            self.pos += 1
            return ord(source[pos])
        letter = source[pos + 1 : pos + 2]
        if letter in _CLASS_ESCAPES:
            self.pos += 2
            return _CLASS_ESCAPES[letter]
        return self.character_escape(in_class=True)

    def character_class(self) -> str:
        source, start = self.source, self.pos
        self.pos += 1
        negated = source.startswith("^", self.pos)
        self.pos += negated
        ranges: list[tuple[int, int]] = []
        while True:
            if self.pos >= len(source):
                raise RegexpError("unterminated character class", start)
            if source[self.pos] == "]":
                self.pos += 1
                break
            first = self.class_atom()
            after_dash = source[self.pos + 1 : self.pos + 2]
            if source.startswith("-", self.pos) and after_dash not in ("]", ""):
                dash = self.pos
                self.pos += 1
                last = self.class_atom()
                if isinstance(first, int) and isinstance(last, int):
                    if first > last:
                        raise RegexpError("range out of order in character class", dash)
                    ranges.append((first, last))
                    continue
                # Annex B: a class escape cannot bound a range, the dash is then literal.
                ranges.append((0x2D, 0x2D))
                ranges.extend(((last, last),) if isinstance(last, int) else last)
            ranges.extend(((first, first),) if isinstance(first, int) else first)
        return self.char_set(tuple(ranges), negated)

    def char_set(self, ranges: Ranges, negated: bool = False) -> str:
        # Under `i`, a negated class is negated after folding, as JavaScript does.
        return _class(fold_ranges(ranges) if self.ignore_case else ranges, negated)


def normalize_source(source: str) -> str:
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


def compile_regexp(source: str, ignore_case: bool) -> Pattern:
    """Compile a JavaScript regexp source; RegexpError if JavaScript or RE2 refuses it."""
    if len(source) > MAX_SOURCE_LENGTH:
        raise RegexpError(f"longer than {MAX_SOURCE_LENGTH} characters")
    if _ASCII_LITERAL.fullmatch(source):
        return _AsciiLiteral(source, ignore_case)
    return _Re2Pattern(_Translator(source, ignore_case).translate())


def compile_glob(glob: str) -> Pattern:
    """XO's glob word: `*` is JavaScript's `.*`, the rest literal, case-insensitive, unanchored."""
    parts = ("".join(_literal(ord(char), True) for char in part) for part in glob.split("*"))
    return _Re2Pattern(f"{_DOT}*".join(parts))
