"""Filter regexps and globs (issue #11): matching time against input length, and the cost of
filtering a cache-sized list of objects. Prints one JSON object.

    .venv/bin/python bench/filters_regex.py [--objects 10000] [--repeat 5]

`scaling`: seconds for one match of each pathological pattern (exponential for a backtracking
engine: `/(a+)+$/` took 3 s on 25 characters, doubling per character) on inputs of growing
length; linear growth means the per-character cost stays flat. `filtering`: seconds to filter
`--objects` VM-like objects with typical filters (best of `--repeat`), and Python's `re` on the
same regexp for comparison of the per-call overhead. `compile`: seconds to parse filters that
fill the per-filter budgets with expensive patterns (the bound on what one call can cost before
any matching; such filters are refused once over budget, so this is the worst accepted or
rejected case), best of `--repeat`.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xod.filters import MatcherSyntaxError, parse

PATHOLOGICAL = {
    "nested": ("/(a+)+$/", lambda n: "a" * n + "!"),
    "uuid": ("/^([0-9a-f-]+)+Z/", lambda n: ("0123456789abcdef-" * (n // 17 + 1))[:n]),
    "glob": ("a*a*a*a*a*a*b", lambda n: "a" * n),
}
LENGTHS = (25, 1_000, 100_000, 1_000_000)


def best_of(repeat: int, run) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def scaling(repeat: int) -> dict:
    result = {}
    for name, (pattern, make_input) in PATHOLOGICAL.items():
        node = parse(pattern)
        rows = {}
        for length in LENGTHS:
            text = make_input(length)
            seconds = best_of(repeat, lambda node=node, text=text: node.match(text))
            rows[str(length)] = {"seconds": seconds, "ns_per_char": seconds / length * 1e9}
        result[name] = {"pattern": pattern, "by_length": rows}
    return result


def filtering(count: int, repeat: int) -> dict:
    objects = [
        {
            "type": "VM",
            "id": f"9f1c6a2e-0000-4000-8000-{i:012d}",
            "name_label": f"web-{i:05d}",
            "power_state": ("Running", "Halted")[i % 2],
            "tags": ["prod"] if i % 10 == 0 else [],
            "os_version": {"name": "Debian GNU/Linux 12"},
        }
        for i in range(count)
    ]
    filters = {
        "regexp": "type:VM name_label:/^web-\\d+7$/",
        "regexp_i": "name_label:/WEB-0+1/i",
        "glob": "name_label:web-*7",
        "bare_regexp": "/debian/i",
        "substring": "power_state:running",
    }
    result = {}
    for name, text in filters.items():
        node = parse(text)
        seconds = best_of(repeat, lambda node=node: [o for o in objects if node.match(o)])
        result[name] = {"filter": text, "seconds": seconds, "us_per_object": seconds / count * 1e6}
    python_re = re.compile(r"^web-[0-9]+7(?![\s\S])")
    seconds = best_of(
        repeat, lambda: [o for o in objects if python_re.search(o["name_label"]) is not None]
    )
    result["python_re_same_regexp"] = {"seconds": seconds, "us_per_object": seconds / count * 1e6}
    return result


ADVERSARIAL_FILTERS = {
    "dots": " ".join(["/.{1000}/"] * 64),
    "folded_classes": " ".join([r"/[\W\S\D]{1000}/i"] * 64),
    "alternations": " ".join(["/(" + "|".join(["abc", "bcd", "cde"] * 200) + ")/i"] * 64),
    "globs": " ".join(["*".join(["abcdefgh"] * 400)] * 64),
}


def compile_costs(repeat: int) -> dict:
    result = {}
    for name, text in ADVERSARIAL_FILTERS.items():
        try:
            parse(text)
            outcome = "accepted"
        except MatcherSyntaxError as error:
            outcome = error.message
        seconds = best_of(repeat, lambda text=text: _parse_or_refuse(text))
        result[name] = {"filter_chars": len(text), "outcome": outcome, "seconds": seconds}
    return result


def _parse_or_refuse(text: str) -> None:
    try:
        parse(text)
    except MatcherSyntaxError:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    report = {
        "scaling": scaling(args.repeat),
        "filtering": filtering(args.objects, args.repeat),
        "compile": compile_costs(args.repeat),
    }
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())


if __name__ == "__main__":
    main()
