"""Which object types a filter can match, so a scope scans only those types' objects.

Every XO object has a string `type`. A filter pins the type when each object it matches must
satisfy a condition on `type` alone: `type:/^VM$/`, `type:VM` (a substring: VM, VM-template,
VM-snapshot, VM-controller), `type:VM (power_state:Running)`, `|(type:host type:pool)`,
`!type:message`, or the object filter `{"type": "VM"}`. The condition is the filter's own
matcher applied to the type string, so the candidates are exactly the known types it accepts:
never a guess about the language's semantics, and never an object dropped that a full scan
would keep.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from xod.filters.matching import partial_match
from xod.filters.nodes import And, Node, Not, Or, Property

__all__ = ["candidate_types", "type_condition"]

TypeTest = Callable[[str], bool]


def type_condition(filter_spec: Node | Mapping[str, Any]) -> TypeTest | None:
    """A test every matching object's `type` passes, or None when the filter pins no type.

    Necessary, not sufficient: an object whose type fails it never matches the filter.
    """
    if isinstance(filter_spec, Node):
        return _node_condition(filter_spec)
    if "type" in filter_spec:
        expected = {"type": filter_spec["type"]}
        return lambda object_type: partial_match(expected, {"type": object_type})
    return None


def _node_condition(node: Node) -> TypeTest | None:
    if isinstance(node, Property):
        if node.name != "type":
            return None
        child = node.child
        return child.match  # exact: the property matches iff its child matches the type
    if isinstance(node, Not):
        # Only a negated `type:` term is a condition on the type alone (`!type:VM`).
        inner = node.child
        if isinstance(inner, Property) and inner.name == "type":
            child = inner.child
            return lambda object_type: not child.match(object_type)
        return None
    if isinstance(node, And):
        tests = [t for t in map(_node_condition, node.children) if t is not None]
        if not tests:
            return None
        return lambda object_type: all(test(object_type) for test in tests)
    if isinstance(node, Or):
        # Each alternative must pin the type, or any type can match through the free one.
        alternatives = [_node_condition(child) for child in node.children]
        if any(t is None for t in alternatives):
            return None
        pinned = [t for t in alternatives if t is not None]
        return lambda object_type: any(test(object_type) for test in pinned)
    return None


def candidate_types(
    filter_spec: Node | Mapping[str, Any], known_types: Iterable[str]
) -> frozenset[str] | None:
    """The types among `known_types` whose objects the filter can match; None = any type."""
    test = type_condition(filter_spec)
    if test is None:
        return None
    return frozenset(object_type for object_type in known_types if test(object_type))
