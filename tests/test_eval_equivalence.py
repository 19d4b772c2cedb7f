"""Faster spellings of what the checks compute, compared with the plain ones they replace (issue 19)."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from preflight_providers.google.checks.facts import Licence
from preflight_providers.google.checks.policy import _MEMBERSHIP_FIELDS, Membership

account = importlib.import_module("preflight_providers.google.checks.account")

_ids = st.sampled_from(["p1", "p2", "p3", "*", ""])


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(_ids, _ids), max_size=6), st.lists(st.tuples(_ids, _ids), max_size=4))
def test_no_gmail_sets_say_what_any_licence_match_says(licences: list[tuple[str, str]],
                                                       held: list[tuple[str, str]]) -> None:
    no_gmail = tuple(Licence(p, s, "name") for p, s in licences)
    pairs, every_sku = account._no_gmail(no_gmail)
    for product, sku in held:
        assert ((product, sku) in pairs or product in every_sku) == any(x.matches(product, sku) for x in no_gmail)


def _plain_signature(m: Membership) -> tuple[Any, ...]:
    return tuple(frozenset(v.items()) if isinstance(v, Mapping) else v
                 for v in (getattr(m, name) for name in _MEMBERSHIP_FIELDS))


_strings = st.frozensets(st.sampled_from(["a", "b", "c"]), max_size=3)
_maps = st.dictionaries(st.sampled_from(["x", "y"]), st.sampled_from(["1", "2"]), max_size=2)


@settings(max_examples=300, deadline=None)
@given(_strings, _strings, st.none() | st.just("r"), st.none() | _strings, _maps, st.none() | _strings, _maps, _maps,
       st.booleans())
def test_a_membership_signature_is_the_plain_one(units: frozenset[str], known: frozenset[str], root: str | None,
                                                 groups: frozenset[str] | None, nested: dict[str, str],
                                                 licences: frozenset[str] | None, unread: dict[str, str],
                                                 labels: dict[str, str], proxied: bool) -> None:
    from types import MappingProxyType

    m = Membership(units, known, root, groups, {k: v == "1" for k, v in nested.items()}, licences,
                   MappingProxyType(unread) if proxied else unread, labels)
    assert m.signature() == _plain_signature(m)
