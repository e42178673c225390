"""xod's regexps agree with JavaScript's: random patterns built from JavaScript regexp syntax
(non-unicode mode, Annex B) and random texts, compiled by xod (RE2) and by Node.js
(`new RegExp`, tests/js/regexp_oracle.mjs). Whatever Node accepts, xod accepts with the same
answers, unless it is a construct xod refuses by design (backreferences, lookarounds);
whatever Node rejects, xod rejects."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest

from xod.filters.js_regex import RegexpError, compile_regexp

ORACLE = Path(__file__).resolve().parents[1] / "js" / "regexp_oracle.mjs"
ATOMS = [
    *"abA-_ .^$|()[]{}*+?\\é1,:=!<>sSkK",
    "\u212a",  # Kelvin sign: no case variant in JavaScript's non-unicode `i`
    "ſ",  # long s: likewise
    *[r"\d", r"\D", r"\w", r"\W", r"\s", r"\S", r"\b", r"\B", r"\/", r"\-", r"\n", r"\t"],
    *["(?:", "[^", "{2}", "{1,}", "{0,2}", "{,2}", r"\x41", r"\u00e9", r"\0", r"\1", r"\2"],
    *[r"\7", r"\8", r"\c", r"\cJ", r"\k", "(?<n>", r"\k<n>", "(?=", "(?!", "(?<=", "(?<!"],
]
TEXT_CHARS = [
    *"abAB-_ 19kKsScx{}[]\\,:/\t\n\r",
    *"\u2028\u00e9\u00c9\x00\x07\x08\u212a\u017f\u00a0\ufeff",
]
REFUSED_BY_DESIGN = ("backreference", "lookahead", "lookbehind")


def random_cases(seed: int, count: int) -> list[tuple[str, str, list[str]]]:
    rng = random.Random(seed)
    cases = []
    for _ in range(count):
        source = "".join(rng.choice(ATOMS) for _ in range(rng.randint(1, 12)))
        texts = ["".join(rng.choices(TEXT_CHARS, k=rng.randint(0, 8))) for _ in range(8)]
        cases.append((source, rng.choice(["", "i"]), texts))
    return cases


def javascript_answers(cases: list[tuple[str, str, list[str]]]) -> list:
    result = subprocess.run(
        ["node", str(ORACLE)],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(result.stdout)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_regexps_agree_with_javascript(seed: int) -> None:
    cases = random_cases(seed, 2_000)
    expected_answers = javascript_answers(cases)
    compared = refused = 0
    for (source, flags, texts), expected in zip(cases, expected_answers, strict=True):
        try:
            pattern = compile_regexp(source, ignore_case=flags == "i")
        except RegexpError as error:
            if expected != "error":
                assert any(word in str(error) for word in REFUSED_BY_DESIGN), (source, error)
                refused += 1
            continue
        assert expected != "error", f"/{source}/{flags} is not valid JavaScript"
        answers = [pattern.search(text) for text in texts]
        assert answers == expected, (source, flags, texts)
        compared += 1
    # The generator must exercise both sides (valid patterns, and refused constructs).
    assert compared > 500 and refused >= 5
