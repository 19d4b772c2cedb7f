"""explain tries a catalogue pattern only when the text holds one of its needles: never a different answer."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from preflight import explain as explain_module
from preflight.causes import Catalogue, load_catalogue
from preflight.explain import Needles, _folded, explain, may_match, needles

CORPUS = [e["text"] for e in json.loads((Path(__file__).parent / "data" / "explain_corpus.json")
                                        .read_text(encoding="utf-8"))]


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


@pytest.mark.parametrize(("source", "expected"), [
    (r"\b5\.7\.8\b.{0,60}(username|p=badcredentials)", ((("5.7.8",), ("username", "p=badcredentials")),)),
    (r"abc?d", ((("ab",), ("d",)),)),  # c may be missing: ab and d are what every match holds
    (r"ab+c", ((("a",), ("c",)),)),  # b may be repeated
    (r"ab{2,3}cde", ((("a",), ("cde",)),)),
    (r"foo(bar|baz)+qux|Quux", ((("foo",), ("bar", "baz"), ("qux",)), (("quux",),))),  # lower-cased, as the text is
    (r"x[)|(]yz", ((("x",), ("yz",)),)),  # a bracket and a bar inside a class are neither group nor alternative
    (r"[]|]ab", ((("ab",),),)),
    (r"A\.B\-C", ((("a.b-c",),),)),
    (r"(?<!\w)sendas\b", ((("sendas",),),)),  # a negative look-around requires nothing
    (r"a(?!bc)d", ((("a",), ("d",)),)),
    (r"ΟΔΟΣ", ((("οδοσ",),),)),  # one character at a time, as _folded lowers them: no final sigma
    (r"a|(b)", ((("a",),), (("b",),))),  # a group that is not optional is required
    (r"^(?=.*\bauth xoauth2\b)", ((("auth xoauth2",),),)),  # so is a look-ahead
    (r"(?P<code>5\d\d) (?:x|yz)", ((("5",), (" ",), ("x", "yz")),)),
    (r"(is |has been )?(disabled|off)", ((("disabled", "off"),),)),  # an optional group requires nothing
    (r"a(b|c){0,2}", ((("a",),),)),
    (r"a|(b)?", None),  # the second alternative requires nothing
    (r"c(d|.)", ((("c",),),)),  # a group with an alternative of no plain text gives no clause
    (r"(?:a|)|c", None),  # nor one with an empty alternative
    (r"(?x) a b", None),  # flags: in verbose mode a space is nothing
    (r"(?i)abc", None),
    (r"(?P=name)", None),
    (r"x{y}", None),  # a brace that is no repeat
    (r"ab)c", None),
    (r"(ab", None),
])
def test_needles_of_written_forms(source: str, expected: Needles | None) -> None:
    assert needles(source) == expected


@pytest.mark.parametrize(("source", "text"), [(r"abc?d", "abd"), (r"ab+c", "abbbc"), (r"ab{2,3}cde", "abbcde"),
                                              (r"x\.?y", "xy"), (r"(?:ab)?cd", "cd"), (r"ab*?c", "ac")])
def test_a_repeated_character_is_no_needle(source: str, text: str) -> None:
    found = needles(source)
    assert re.search(source, text) and found is not None and may_match(found, text)


def test_every_catalogue_pattern_matches_only_where_a_needle_is(catalogue: Catalogue) -> None:
    texts = [t.lower() for t in CORPUS]
    texts += [" ".join(t.split()) for t in texts]  # as explain sees them: one line
    tried = 0
    for cause in catalogue.causes:
        for pattern in cause.patterns:
            found = needles(pattern.source)
            if found is None:
                continue
            for text in texts:
                if _folded(pattern.source).search(text):
                    tried += 1
                    assert may_match(found, text), (cause.id, pattern.source, found, text[:200])
    assert tried > 200  # the corpus holds matches of most patterns: the property was tested, not assumed


def test_most_catalogue_patterns_have_needles(catalogue: Catalogue) -> None:
    sources = [p.source for c in catalogue.causes for p in c.patterns]
    assert sum(needles(s) is not None for s in sources) >= 0.9 * len(sources)


def test_explain_answers_as_if_every_pattern_were_tried(catalogue: Catalogue,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    fast = [explain(text, catalogue).to_dict() for text in CORPUS]
    monkeypatch.setattr(explain_module, "needles", lambda _source: None)
    assert [explain(text, catalogue).to_dict() for text in CORPUS] == fast
