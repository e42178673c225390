"""Regexps and globs run in time linear in the input (RE2): patterns that make a backtracking
engine (XO's, or Python's `re`) take exponential or high-polynomial time answer correctly on
long inputs; what RE2 cannot run is a clear syntax error; sizes are bounded."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xod.filters import MatcherSyntaxError, parse
from xod.filters.js_regex import MAX_SOURCE_LENGTH
from xod.filters.parser import MAX_PATTERN_TEXT, MAX_PATTERNS, MAX_PROGRAM_SIZE

UUID = "9f1c6a2e-0000-4000-8000-000000000001"
LONG = 10_000  # a backtracking engine needs ~2**LONG steps on these inputs

# A generous bound: RE2 answers in milliseconds; a backtracking engine would never answer (and,
# busy in C, could not even be interrupted).
pytestmark = pytest.mark.timeout(60)


def test_nested_quantifier_on_a_long_input() -> None:
    node = parse("name_label:/(a+)+$/")
    assert not node.match({"name_label": "a" * LONG + "!"})
    assert node.match({"name_label": "a" * LONG})
    assert node.match({"name_label": "!" + "a" * LONG})


def test_the_reported_uuid_filter() -> None:
    node = parse(f"id:{UUID} id:/^([0-9a-f-]+)+Z/")
    assert not node.match({"id": UUID})
    long_id = "0123456789abcdef-" * (LONG // 17)
    assert not parse("id:/^([0-9a-f-]+)+Z/").match({"id": long_id})
    assert parse("id:/^([0-9a-f-]+)+Z/").match({"id": long_id + "Z"})


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        (r"/(x+x+)+y/", "x" * LONG, False),
        (r"/(x+x+)+y/", "x" * LONG + "y", True),
        (r"/^(\w+\s?)*$/", "word " * (LONG // 5) + "!", False),
        (r"/(a|aa)*b/", "a" * LONG, False),
        (r"/(.*a){12}/", "a" * 11 + "b" * LONG, False),
        (r"/(.*a){12}/i", "A" * 12 + "b" * LONG, True),
        (r"/^(a?){30}a{30}$/", "a" * 30, True),
    ],
)
def test_pathological_regexps_answer_on_long_inputs(
    pattern: str, text: str, expected: bool
) -> None:
    assert parse(pattern).match(text) is expected


def test_globs_with_many_stars_are_linear_too() -> None:
    # Python's `re` took 1.5 s for this glob on 50 characters, and grows as n**6.
    glob = parse("a*a*a*a*a*b")
    assert not glob.match("a" * LONG)
    assert glob.match("a" * LONG + "b")
    assert not parse("name_label:A*A*A*A*A*A*A*A*b").match({"name_label": "a" * LONG + "!"})


def test_a_match_is_searched_through_nested_values() -> None:
    vm = {"tags": ["x" * LONG, "prod"], "other": {"deep": ["a" * LONG + "!"]}}
    assert parse("/(a+)+!/").match(vm)
    assert not parse("/(a+)+$/").match({"tags": ["a" * LONG + "!"]})


@pytest.mark.parametrize(
    ("filter_text", "construct", "position"),
    [
        (r"name_label:/(a)\1/", r"backreference \1", 15),
        (r"/(?<x>b)\k<x>/", r"backreference \k<x>", 8),
        ("/web(?=-prod)/", "lookahead (?=…)", 4),
        ("x /a(?!b)/", "negative lookahead (?!…)", 4),
        ("/(?<=a)b/i", "lookbehind (?<=…)", 1),
        ("/(?<!a)b/", "negative lookbehind (?<!…)", 1),
        ('"\U0001f600":/(?=a)/', "lookahead (?=…)", 6),  # positions count UTF-16 code units
    ],
)
def test_what_re2_cannot_run_is_a_syntax_error_naming_it(
    filter_text: str, construct: str, position: int
) -> None:
    with pytest.raises(MatcherSyntaxError) as caught:
        parse(filter_text)
    error = caught.value
    assert error.message.startswith("invalid regular expression: /")
    assert f"{construct} is not supported: xod runs regular expressions in linear time" in str(
        error
    )
    assert error.position == position and error.text == filter_text


def test_annex_b_escapes_that_are_not_backreferences_still_work() -> None:
    assert parse(r"/(a)\2/").match("a\x02")  # only one group: `\2` is an octal escape
    assert parse(r"/\k<x>/").match("k<x>")  # no named group: `\k` is a literal "k"
    assert parse(r"/\8/").match("8")


def test_repetition_counts_are_bounded() -> None:
    assert parse("/^a{1000}$/").match("a" * 1000)
    for text in ("/a{1001}/", "/a{2,5000}/", "/(a{100}){100}/"):
        with pytest.raises(MatcherSyntaxError, match="invalid regular expression"):
            parse(text)
    with pytest.raises(MatcherSyntaxError, match="numbers out of order"):
        parse("/a{3,2}/")


def test_pattern_sizes_are_bounded() -> None:
    parse("/" + "a" * MAX_SOURCE_LENGTH + "/")
    with pytest.raises(MatcherSyntaxError, match=f"longer than {MAX_SOURCE_LENGTH}"):
        parse("/" + "a" * (MAX_SOURCE_LENGTH + 1) + "/")
    with pytest.raises(MatcherSyntaxError, match="pattern too large") as caught:
        parse("name:/" + ".{1000}" * 20 + "/")
    assert caught.value.position == 6
    with pytest.raises(MatcherSyntaxError, match=r"invalid glob .*: pattern too large"):
        parse("a*" * 4000)


def test_patterns_per_filter_are_bounded() -> None:
    assert parse(" ".join(f"/{i}/" for i in range(MAX_PATTERNS)))
    many = " ".join(f"a{i}*" for i in range(MAX_PATTERNS + 1))
    with pytest.raises(MatcherSyntaxError, match="too many patterns") as caught:
        parse(many)
    assert caught.value.position == many.index(f"a{MAX_PATTERNS}*")

    long_sources = " ".join(["/" + "a" * (MAX_PATTERN_TEXT // 2) + "/"] * 2)
    parse(long_sources)
    with pytest.raises(MatcherSyntaxError, match="patterns too long") as caught:
        parse(long_sources + " b*")
    assert caught.value.position == len(long_sources) + 1

    big = "/.{1000}/"  # about 21 000 RE2 instructions (`.` is four UTF-8 ranges)
    parse(" ".join([big] * 2))
    with pytest.raises(MatcherSyntaxError, match=f"over {MAX_PROGRAM_SIZE} RE2 instructions"):
        parse(" ".join([big] * 3))


@pytest.mark.parametrize(
    ("pattern", "matching", "not_matching"),
    [
        (r"/[\d-z]/", ["5", "-", "z"], ["a", "y"]),  # Annex B: `\d` cannot bound a range
        ("/[[:alpha:]]/", [":]", "[]", "p]"], ["p", "b]"]),  # no POSIX classes in JavaScript
        (r"/[\c1]/", ["\x11"], ["1", "c"]),  # Annex B control escape in a class
        ("/[^a]/i", ["b"], ["a", "A"]),  # a negated class is negated after case folding
        (r"/^\u00e9\x41\101$/", ["éAA"], ["eAA"]),
        (r"/a{,2}/", ["a{,2}"], ["aa"]),
        (r"/]}/", ["]}"], ["]"]),
        ("/^ÉTÉ$/i", ["été"], ["ete"]),
        (r"/\W/i", ["\u212a", "!"], ["k", "K"]),
        ("/k/i", ["k", "K"], ["\u212a"]),  # JavaScript's `i` maps no non-ASCII letter to ASCII
        ("/[r-t]/i", ["S", "s"], ["\u017f"]),
        ("/Web-1/", ["a Web-1"], ["web-1", "Web-"]),  # plain ASCII text: a substring test
        ("/web 1/i", ["WEB 1", "éWeB 1"], ["web\u00a01", "we b 1"]),
        (r"/^\S+$/", ["a"], ["a\u00a0", "a\ufeff"]),
        ("/a.c/", ["abc"], ["a\rc", "a\u2029c"]),
        (r"/\bb/", ["a b"], ["ab"]),
        (r"/a\Bb/", ["ab"], ["a b"]),
        ("/^a*?b??$/", ["aab", "a"], ["ba"]),
    ],
)
def test_javascript_syntax_is_translated_faithfully(
    pattern: str, matching: list[str], not_matching: list[str]
) -> None:
    node = parse(pattern)
    assert all(node.match(text) for text in matching)
    assert not any(node.match(text) for text in not_matching)


@pytest.mark.parametrize(
    "pattern",
    ["/^*/", r"/\b+/", "/a|*/", "/(*)/", "/{1}/", "/a{2}{3}/", "/a??+/", "/[b-a]/", "/a)/"],
)
def test_what_javascript_rejects_is_rejected(pattern: str) -> None:
    with pytest.raises(MatcherSyntaxError, match="invalid regular expression"):
        parse(pattern)


REGEXP_ALPHABET = "()[]{}*+?|^$.\\-,:=!<>_0123456789abcdkxuwsSDWBc\u00e9\u2028"


@given(st.text(alphabet=REGEXP_ALPHABET, max_size=24), st.sampled_from(["", "i"]))
@settings(max_examples=1500, deadline=None)
def test_any_regexp_source_compiles_or_is_a_syntax_error(source: str, flags: str) -> None:
    text = f"name:/{source.replace('/', '')}/{flags}"
    try:
        node = parse(text)
    except MatcherSyntaxError as error:
        assert 0 <= error.position <= len(text)
        return
    assert isinstance(node.match({"name": "a-b_c 0123 é\u2028" * 3}), bool)
    assert parse(str(node)) == node
