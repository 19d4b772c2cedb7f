"""mask_secrets skips a pattern whose literals a text lacks: it masks exactly what running every pattern masks.

The reference below runs every pattern on every text, as mask_secrets did before it learned to skip; the
property tests compare the two over generated texts made of the patterns' own keywords (in any case, and with
the non-ASCII letters the regex engine folds onto ASCII ones), credential-like runs, MASK's asterisks and
SASL transcripts, and over the hostile inputs of test_masking.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from preflight.masking import _PATTERNS, MASK, _mask_sasl_responses, mask_secrets
from preflight.runsecrets import MIN_SECRET, RunSecrets, forms
from tests.test_masking import ADVERSARIAL, N


def reference(text: str) -> str:
    """Every pattern, every time, in order."""
    for _needles, _blind, pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return _mask_sasl_responses(text)


KEYWORDS = [
    "client_secret", "password", "passwd", "pass", "pwd", "secret", "access_token", "refresh_token", "id_token",
    "assertion", "client_assertion", "passphrase", "AUTH PLAIN ", "auth login ", "AUTH XOAUTH2 ", "AUTH OAUTHBEARER ",
    "auth=Bearer ", "Bearer ", "Basic ", "basic ", "eyJ", ".eyJ", "ya29.", "1//", "Invalid client secret provided ",
    "334 ", "\n", " -> ", "C: ", "\r\n",
]
# Letters that IGNORECASE matches with ASCII ones: the long s, the Kelvin sign, dotless and dotted i.
FOLDED = {"s": "\u017f", "k": "\u212a", "i": "\u0131", "I": "\u0130"}
PIECES = ["=", ":", " ", "\t", "'", '"', "&", ",", "}", "*", MASK, "abcdEFGH1234", "c2VjcmV0LXBhc3N3b3Jk==",
          "A" * 12, "x.y-z_", "/+", "é", "\u00a0"]


def _cased(word: str) -> st.SearchStrategy[str]:
    """The word with each letter in either case, or folded to a non-ASCII letter IGNORECASE matches."""
    return st.tuples(*(st.sampled_from(sorted({c, c.upper(), c.lower(), FOLDED.get(c, c)})) for c in word)).map(
        "".join)


texts = st.lists(
    st.one_of(st.sampled_from(KEYWORDS).flatmap(_cased), st.sampled_from(PIECES), st.text(max_size=6)),
    max_size=24,
).map("".join)


@settings(max_examples=1500, deadline=None)
@given(texts)
def test_skipping_masks_exactly_what_every_pattern_masks(text: str) -> None:
    assert mask_secrets(text) == reference(text)


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(KEYWORDS).flatmap(_cased), st.sampled_from(PIECES)), max_size=4).map("".join))
def test_short_texts_are_masked_as_every_pattern_masks_them(text: str) -> None:
    assert mask_secrets(text) == reference(text)


@pytest.mark.parametrize("keyword", KEYWORDS)
@pytest.mark.parametrize("spelling", [str.lower, str.upper, str.title, lambda k: k.replace("s", FOLDED["s"])])
@pytest.mark.parametrize("value", ["=abcdEFGH1234", ": 'c2VjcmV0LXBhc3N3b3Jk=='", "eyJhbGciOi.eyJzdWIiOi.c2ln"])
def test_each_keyword_is_masked_as_every_pattern_masks_it(keyword: str, spelling: Any, value: str) -> None:
    text = f"x {spelling(keyword)}{value} y"
    assert mask_secrets(text) == reference(text)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_is_masked_as_every_pattern_masks_it(text: str) -> None:
    assert mask_secrets(text) == reference(text)


@pytest.mark.parametrize("text", [
    "pa\u017fsword=hunter2hunter2",  # the long s: not ASCII, every case-blind pattern runs
    "access_to\u212aen=abcdefgh",
    "AUTH PLAIN dXNlcjpwYXNzd29yZA==",
    "auth plain dXNlcjpwYXNzd29yZA==",
    "Authorization: BEARER abcdefgh12345",
    "Authorization: Basic dXNlcjpwYXNzd29yZA==",
    "INVALID CLIENT SECRET PROVIDED: 'Qx8~wrong.secret-value'",
    "eyJhbGciOi.eyJzdWIiOi.c2ln and ya29.a0AfH6SMBsentinelvalue and 1//0gSENTINEL-refresh-token-value",
    "Passphrase: \u00e9t\u00e9-2026-secret",
    "Forbidden",
])
def test_examples_are_masked_as_every_pattern_masks_them(text: str) -> None:
    assert mask_secrets(text) == reference(text)
    assert mask_secrets(text) != text or text == "Forbidden"


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_hostile_input_is_masked_as_every_pattern_masks_it(name: str) -> None:
    text = ADVERSARIAL[name][: N // 16]  # the reference is the slow path: a 4 KiB slice of each
    assert mask_secrets(text) == reference(text)


def test_every_match_of_a_pattern_holds_one_of_its_literals() -> None:
    """The literals are what makes skipping safe: a match of each pattern in a text made to match it holds one."""
    samples = ["AUTH LOGIN dXNlcm5hbWU6", "auth=Bearer abcdefgh", "Basic dXNlcjpwYXNzd29yZA==",
               "eyJabcde.eyJabcde.sig", "ya29.abcdefghijkl", "1//abcdefghijklmnopqrstuv", "client_assertion=abcd",
               "Invalid client secret provided: 'x'"]
    for (needles, blind, pattern), sample in zip(_PATTERNS, samples, strict=True):
        match = pattern.search(sample)
        assert match is not None, pattern.pattern
        found = match.group(0).lower() if blind else match.group(0)
        assert any(needle in found for needle in needles), pattern.pattern


def test_a_childs_forms_reach_the_run_as_the_run_would_work_them_out() -> None:
    run = RunSecrets()
    tenant = run.child()
    secret = "ya29.a0Af-tenant/token+value=="
    tenant.add(secret, secret)
    other = RunSecrets()
    other.add(secret)
    for form in forms(secret):
        text = f"<{form}>"
        assert run.mask_known(text) == tenant.mask_known(text) == other.mask_known(text) == f"<{MASK}>"


def reference_known(secrets: list[str], text: str) -> str:
    """Every form of every secret, longest first, each replaced wherever it is."""
    every = set().union(*(forms(s) for s in secrets if len(s.strip()) >= MIN_SECRET))
    for form in sorted(every, key=lambda f: (-len(f), f)):
        if form in text:
            text = text.replace(form, MASK)
    return text


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_looking_for_anchors_first_masks_exactly_what_looking_for_every_form_masks(data: st.DataObject) -> None:
    # Secrets sharing starts (as one issuer's tokens do), holding asterisks (so that masking one can make
    # another), and texts made of their forms' pieces, MASK and more asterisks.
    secrets = data.draw(st.lists(st.text(alphabet="ab*=/+ é", min_size=4, max_size=12).map(lambda s: "ya29." + s)
                                 | st.text(alphabet="ab*x", min_size=4, max_size=10), min_size=1, max_size=6))
    every = sorted(set().union(*(forms(s) for s in secrets if len(s.strip()) >= MIN_SECRET)) or {"none"})
    piece = st.sampled_from(every).flatmap(lambda f: st.tuples(st.integers(0, len(f)), st.integers(0, len(f))).map(
        lambda ij: f[min(ij):max(ij)] if ij[0] != ij[1] else f))
    text = data.draw(st.lists(piece | st.sampled_from([MASK, "*", "**", "a", "b", " ", "ya29."]), max_size=12)
                     .map("".join))
    registry = RunSecrets()
    registry.add(*secrets)
    assert registry.mask_known(text) == reference_known(secrets, text)
    child = RunSecrets().child()
    child.add(*secrets)
    assert child.mask_known(text) == reference_known(secrets, text)


def test_a_masked_secret_can_make_another_that_is_masked_too() -> None:
    """A form with an asterisk may appear only once a shorter one is masked: it is still looked for."""
    registry = RunSecrets()
    registry.add("zb**", "wxyz")
    # "wxyz" goes first (as long, and before it in order): "zb" and its MASK then spell "zb**", masked in turn.
    assert registry.mask_known("zbwxyz") == reference_known(["zb**", "wxyz"], "zbwxyz") == MASK + "*" * 6


def test_a_tenant_learning_a_secret_its_run_knows_masks_every_form_of_it() -> None:
    """A child registry takes a known secret's forms from its run (not worked out again): still all of them."""
    from preflight.runsecrets import RunSecrets, forms

    secret = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"
    run = RunSecrets()
    run.add(secret)
    tenant = run.child()
    tenant.add(secret)
    for form in forms(secret):
        assert form not in tenant.mask_known(f"x {form} y"), form
    assert len(tenant) == 1 and tenant.values() == (secret,)


def test_anchors_grow_long_when_the_forms_do_not_share_their_starts() -> None:
    """Two long tokens sharing a 16-character start: longer anchors cost less than 8-character ones, and mask every
    form all the same."""
    from preflight.runsecrets import RunSecrets, _plan, forms

    tokens = ["eyJ0eXAiOiJKV1Qi" + "a1b2c3d4" * 40, "eyJ0eXAiOiJKV1Qi" + "z9y8x7w6" * 40]
    registry = RunSecrets()
    registry.add(*tokens)
    anchors, _ordered, _unanchored = _plan(forms(tokens[0]) | forms(tokens[1]))
    assert min(len(a) for a in anchors) > 8
    for form in forms(tokens[1]):
        assert form not in registry.mask_known(f'{{"x": "{form}"}}')
