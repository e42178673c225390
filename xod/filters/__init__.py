"""Object filters: Xen Orchestra's complex-matcher language and lodash-style object matching.

Used by the JSON-RPC API (`xo.getAllObjects`, `xod.subscribe`) and by `xod-cli`; pure Python
with no I/O, so any layer may import it.

A filter is a string in XO's complex-matcher language, or an object. An object filter matches
like lodash's `_.matches`: `{"type": "VM", "tags": ["prod"]}` matches the objects whose `type`
is exactly "VM" and whose `tags` contain "prod" (nested objects match partially, arrays by
containment, primitives with JavaScript's `===`).

The string language, as XO's `complex-matcher` package defines it (terms separated by
whitespace are ANDed):

- `word`: a case-insensitive substring of any string in the value, searched recursively
  through arrays and objects; `"quoted words"` may hold any character (`\\"` and `\\\\`
  escape). A raw word is letters, digits and `_-.$`.
- `32`: a numeric word matches the number 32, or the text "32" inside a string.
- `web-*-01`: `*` matches any run of characters except line breaks (case-insensitive).
- `/regexp/` or `/regexp/i`: a regular expression, searched anywhere in the string.
- `name:term`: `term` applied to the property `name` (nest: `boot:order:cn`; arrays and
  strings have `length` and indexes: `snapshots:length:>2`, `tags:0:prod`).
- `name?`: the property is truthy as JavaScript sees it (`[]` and `{}` are truthy).
- `>N`, `>=N`, `<N`, `<=N`: numeric comparison (`CPUs:number:>=4`).
- `!term`: negation; `(a b)`: grouping (AND); `|(a b)`: OR.

Example: `type:VM power_state:|(Running Paused) !tags:test name_label:/^web-\\d+$/i`.

Regular expressions are written in JavaScript's syntax, as XO's users write them, but xod runs
them with RE2, in time linear in the input whatever the pattern (XO's backtracking engine can
take exponential time on patterns like `/(a+)+$/`). Everything JavaScript accepts works the same
(classes, `\\d \\w \\s \\b`, quantifiers including lazy ones and `{n,m}`, groups, `(?<name>…)`,
alternation, `^`, `$` as the very end, `.` stopping at line terminators, the legacy escapes
`\\a` and `\\101`) except what a linear-time engine cannot run, which is refused with a syntax
error naming it: backreferences (`\\1`, `\\k<name>`), lookahead (`(?=…)`, `(?!…)`) and
lookbehind (`(?<=…)`, `(?<!…)`). Case-insensitive `i` follows JavaScript (the Kelvin sign
matches only itself, not "k"). One difference remains: a character outside the Basic
Multilingual Plane (an emoji) is one character to xod, two UTF-16 units to JavaScript, so
`\\uD83D` alone never matches it. Limits, which bound the time and memory a filter can take: a
repetition count is at most 1000 (nested counts multiplied too), a regexp's source at most 4096
characters and its compiled form at most 1 MiB; a filter holds at most 64 regexps and globs,
8192 characters of them and 50 000 RE2 instructions in all. A string that does not parse raises
`MatcherSyntaxError`, whose `position` counts UTF-16 code units as XO's does; the API answers
it with an invalid-parameters error carrying that position.
"""

from xod.filters.candidates import candidate_types
from xod.filters.matching import compile_filter, partial_match
from xod.filters.nodes import Node
from xod.filters.parser import MatcherSyntaxError, parse

__all__ = [
    "MatcherSyntaxError",
    "Node",
    "candidate_types",
    "compile_filter",
    "parse",
    "partial_match",
]
