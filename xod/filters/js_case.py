"""Case-insensitive matching as JavaScript's `i` flag does it (non-unicode mode), for RE2.

A JavaScript regexp with `i` compares characters by `Canonicalize`: the character's
`toUpperCase()` when that is a single character, except that a non-ASCII character never maps
to an ASCII one (so "ſ" matches only itself, not "s", and the Kelvin sign "K" only itself,
not "k"). RE2's own case folding is Unicode's simple folding, which does map those, so xod
compiles every pattern case-sensitively and spells each character's case variants out: `a`
becomes `[Aa]`, a class gains the variants of its members.
"""

from __future__ import annotations

import bisect
from functools import cache, lru_cache

Ranges = tuple[tuple[int, int], ...]

_BMP = 0x10000  # JavaScript compares UTF-16 code units: astral characters have no case here


def _canonicalize(code: int) -> int:
    upper = chr(code).upper()
    if len(upper) != 1 or (code >= 0x80 and ord(upper) < 0x80):
        return code
    return ord(upper)


@cache
def _case_variants() -> tuple[list[int], dict[int, tuple[int, ...]]]:
    """Every code unit that has case variants (sorted), and its variants (itself included)."""
    groups: dict[int, list[int]] = {}
    for code in range(_BMP):
        if not 0xD800 <= code <= 0xDFFF:
            groups.setdefault(_canonicalize(code), []).append(code)
    variants = {code: tuple(group) for group in groups.values() if len(group) > 1 for code in group}
    return sorted(variants), variants


def char_variants(code: int) -> tuple[int, ...]:
    """The characters `code` matches under the `i` flag (itself when it has no case)."""
    return _case_variants()[1].get(code, (code,))


@lru_cache(maxsize=256)  # the big sets come from `\W`, `\S` and `\D`: the same few tuples
def fold_ranges(ranges: Ranges) -> Ranges:
    """A character set closed under the `i` flag: what any member matches case-insensitively."""
    cased, variants = _case_variants()
    extra: set[int] = set()
    for first, last in ranges:
        start = bisect.bisect_left(cased, first)
        end = bisect.bisect_right(cased, last)
        for code in cased[start:end]:
            extra.update(variants[code])
    return merge_ranges(ranges + tuple((code, code) for code in extra))


def merge_ranges(ranges: Ranges) -> Ranges:
    """Sorted, overlapping and adjacent ranges joined: a short class for RE2 to compile (a
    case-folded `[\\W]` is otherwise thousands of single characters, repeated by `{n}`)."""
    merged: list[tuple[int, int]] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(last, merged[-1][1]))
        else:
            merged.append((first, last))
    return tuple(merged)
