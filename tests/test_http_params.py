"""encode_params writes plain pairs itself: the query is what urlencode spells for every pair, as requests'
_encode_params hands them to it (str keys and values as UTF-8 bytes, None left out, iterables one pair each)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from hypothesis import given, settings
from hypothesis import strategies as st

from preflight.transport import encode_params


def reference(params: dict[Any, Any]) -> str:
    pairs: list[tuple[Any, Any]] = []
    for key, values in params.items():
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            values = [values]
        for value in values:
            if value is not None:
                pairs.append((key.encode("utf-8") if isinstance(key, str) else key,
                              value.encode("utf-8") if isinstance(value, str) else value))
    return urlencode(pairs, doseq=True)


plain = st.text(alphabet="abcXYZ019_.~-", max_size=6)
text = st.one_of(plain, st.text(max_size=6), st.sampled_from(["a b", "a+b", "a&b", "é", "%41", "*", "a=b", ""]))
scalar = st.one_of(text, st.integers(-10**6, 10**30), st.booleans(), st.floats(allow_nan=True), st.none(),
                   st.binary(max_size=4))
value = st.one_of(scalar, st.lists(scalar, max_size=3), st.tuples(scalar, scalar),
                  st.lists(st.lists(scalar, max_size=2), max_size=2))


@settings(max_examples=1500, deadline=None)
@given(st.dictionaries(st.one_of(text, st.integers(0, 99)), value, max_size=4))
def test_a_query_is_what_urlencode_spells(params: dict[Any, Any]) -> None:
    assert encode_params(params) == reference(params)


def test_plain_pairs_and_the_rest() -> None:
    params = {"projection": "full", "maxResults": 200, "userKey": "jobs@example.com", "q": "a b", "x": None,
              "fields": ["id", "name,email", None], "flag": True, "n": -3, "e": "", "t": "~._-"}
    assert encode_params(params) == reference(params) == (
        "projection=full&maxResults=200&userKey=jobs%40example.com&q=a+b&fields=id&fields=name%2Cemail&flag=True"
        "&n=-3&e=&t=~._-")
