"""The predicates xo.getAllObjects' `filter` and xod.subscribe's scopes apply to objects.

A filter is either a complex-matcher string (parsed to a `Node`) or an object matched the way
lodash's `_.matches` does (XO passes an object filter to `_.filter`): every key of the filter
deep-partially equals the object's, with JavaScript's `===` on primitives.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from xod.filters.js_values import js_strict_equal
from xod.filters.parser import parse

__all__ = ["compile_filter", "partial_match"]


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
    if js_strict_equal(source, target):
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
    """A predicate for xo.getAllObjects' `filter`: string → complex matcher, object → partial.

    Raises MatcherSyntaxError for a string that does not parse.
    """
    if filter_spec is None:
        return lambda obj: True
    if isinstance(filter_spec, str):
        return parse(filter_spec).match
    frozen = dict(filter_spec)
    return lambda obj: partial_match(frozen, obj)
