"""`candidate_types`: the types a filter can match, so a scope scans only their objects."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from xod.filters import candidate_types, compile_filter, parse
from xod.filters.nodes import (
    And,
    GlobPattern,
    Node,
    Not,
    NumberOrString,
    Or,
    Property,
    RegExpNode,
    StringNode,
    TruthyProperty,
)

TYPES = [
    "VM",
    "VM-template",
    "VM-snapshot",
    "VM-controller",
    "host",
    "pool",
    "SR",
    "VDI",
    "VDI-snapshot",
    "message",
    "task",
    "network",
]
VM_LIKE = frozenset({"VM", "VM-template", "VM-snapshot", "VM-controller"})


def pinned(*types: str) -> frozenset[str] | None:
    """The expected answer, typed as `candidate_types` returns it."""
    return frozenset(types)


def test_a_type_word_is_a_case_insensitive_substring() -> None:
    assert candidate_types(parse("type:VM"), TYPES) == VM_LIKE
    assert candidate_types(parse('type:"VM"'), TYPES) == VM_LIKE  # quoting changes nothing
    assert candidate_types(parse("type:vdi"), TYPES) == pinned("VDI", "VDI-snapshot")
    assert candidate_types(parse("type:snapshot"), TYPES) == pinned("VM-snapshot", "VDI-snapshot")


def test_anchored_regexps_and_globs_pin_exact_types() -> None:
    assert candidate_types(parse("type:/^VM$/"), TYPES) == pinned("VM")
    assert candidate_types(parse("type:/^(pool|host|SR|task|message)$/"), TYPES) == pinned(
        "pool", "host", "SR", "task", "message"
    )
    assert candidate_types(parse("type:VM-*"), TYPES) == VM_LIKE - {"VM"}


def test_groups_combine_their_terms() -> None:
    # An AND keeps the types every pinned term allows; free terms do not widen it.
    assert candidate_types(parse("type:/^VM$/ (power_state:Running)"), TYPES) == pinned("VM")
    assert candidate_types(parse("name_label:web (type:VM !type:template)"), TYPES) == (
        VM_LIKE - {"VM-template"}
    )
    assert candidate_types(parse("|(type:host type:pool)"), TYPES) == pinned("host", "pool")
    # An OR with a free alternative can match any type.
    assert candidate_types(parse("|(type:host name_label:web)"), TYPES) is None
    assert candidate_types(parse("!type:VM"), TYPES) == frozenset(TYPES) - VM_LIKE
    # A negated group is not a condition on the type alone.
    assert candidate_types(parse("!(type:VM power_state:Running)"), TYPES) is None


def test_filters_without_a_type_term_allow_any_type() -> None:
    assert candidate_types(parse("power_state:Running"), TYPES) is None
    assert candidate_types(parse("VM"), TYPES) is None  # a bare word searches every field
    assert candidate_types(parse("type?"), TYPES) is None
    assert candidate_types({"power_state": "Running"}, TYPES) is None


def test_object_filters_compare_the_type_strictly() -> None:
    assert candidate_types({"type": "VM", "power_state": "Running"}, TYPES) == pinned("VM")
    assert candidate_types({"type": "vm"}, TYPES) == frozenset()


# --- the restriction never drops a match --------------------------------------------------------

type_words = st.sampled_from(["VM", "vm", "VM-", "template", "snapshot", "host", "S", "", "x"])
type_leaves: st.SearchStrategy[Node] = st.one_of(
    st.builds(StringNode, type_words),
    st.builds(GlobPattern, st.sampled_from(["VM*", "*-*", "V*t*", "*"])),
    st.builds(
        RegExpNode,
        st.sampled_from(["^VM$", "^(pool|host|SR)$", "snap", "^vm", "-", "^$"]),
        st.sampled_from(["", "i"]),
    ),
    st.builds(NumberOrString, st.sampled_from(["0", "1"])),
)
other_terms: st.SearchStrategy[Node] = st.one_of(
    st.builds(StringNode, st.sampled_from(["web", "VM", "Running", "prod"])),
    st.builds(Property, st.sampled_from(["name_label", "power_state", "tags"]), type_leaves),
    st.builds(Property, st.just("power_state"), st.builds(StringNode, st.just("Running"))),
    st.builds(TruthyProperty, st.sampled_from(["type", "tags", "missing"])),
)
leaves = st.one_of(st.builds(Property, st.just("type"), type_leaves), other_terms)


def _extend(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    several = st.lists(children, min_size=2, max_size=4).map(tuple)
    return st.one_of(st.builds(And, several), st.builds(Or, several), st.builds(Not, children))


filters = st.recursive(leaves, _extend, max_leaves=10)
xo_objects = st.fixed_dictionaries(
    {
        "type": st.sampled_from(TYPES),
        "name_label": st.sampled_from(["web-01", "VM db", "template", "host 1"]),
        "power_state": st.sampled_from(["Running", "Halted", "VM"]),
        "tags": st.lists(st.sampled_from(["prod", "VM-snapshot", "x"]), max_size=2),
    }
)


def _scan(match: Any, objects: list[dict[str, Any]], types: frozenset[str] | None) -> list[int]:
    return [
        index
        for index, obj in enumerate(objects)
        if (types is None or obj["type"] in types) and match(obj)
    ]


@given(filters, st.lists(xo_objects, max_size=30))
@settings(max_examples=600, deadline=None)
def test_scanning_only_candidate_types_finds_what_a_full_scan_finds(
    node: Node, objects: list[dict[str, Any]]
) -> None:
    known = {obj["type"] for obj in objects}
    types = candidate_types(node, known)
    assert _scan(node.match, objects, types) == _scan(node.match, objects, None)
    # Through the printed text too: what a client sends is parsed, not built.
    reparsed = parse(str(node))
    assert candidate_types(reparsed, known) == types


@given(
    st.fixed_dictionaries(
        {"type": st.sampled_from([*TYPES, "vm", 1])},
        optional={"power_state": st.sampled_from(["Running", "Halted"])},
    ),
    st.lists(xo_objects, max_size=30),
)
@settings(max_examples=200, deadline=None)
def test_object_filters_keep_every_match(
    spec: dict[str, Any], objects: list[dict[str, Any]]
) -> None:
    match = compile_filter(spec)
    types = candidate_types(spec, {obj["type"] for obj in objects})
    assert _scan(match, objects, types) == _scan(match, objects, None)
