"""The run's secret registry and the credential patterns: every encoding masked, linear time on hostile input."""

from __future__ import annotations

import base64
import json
import logging
import re
import time
from collections.abc import Callable
from urllib.parse import quote, quote_plus

import pytest

from preflight.causes import load_catalogue
from preflight.explain import explain
from preflight.masking import MASK, mask_secrets
from preflight.runsecrets import MaskingFilter, RunSecrets
from tests.leaks import assert_no_leak

SECRET = "p@ss wörd/+=&\"x%1"
TOKEN = "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJzZW50aW5lbCJ9.c2lnbmF0dXJl"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def encodings(user: str, secret: str) -> dict[str, str]:
    return {
        "plain": f"535 you sent {secret}",
        "json": json.dumps({"echo": secret}),
        "json-unicode": json.dumps({"echo": secret}, ensure_ascii=False),
        "url": f"https://x.test/?p={quote(secret, safe='')}",
        "url-plus": f"pw={quote_plus(secret)}",
        "login": f"334 {b64(secret)}",
        "plain-sasl": f"AUTH PLAIN {b64(chr(0) + user + chr(0) + secret)}",
        "plain-sasl-authzid": f"535 {b64(user + chr(0) + user + chr(0) + secret)}",
        "xoauth2": f"535 {b64(f'user={user}' + chr(1) + f'auth=Bearer {secret}' + chr(1) * 2)}",
        "oauthbearer": f"535 {b64(f'n,a={user},' + chr(1) + f'auth=Bearer {secret}' + chr(1) * 2)}",
        "urlsafe": base64.urlsafe_b64encode(("xy" + secret).encode()).decode(),
        "json-in-base64": b64(json.dumps({"sent": secret})),
    }


@pytest.mark.parametrize("user", ["a@b.example", "jobs@contoso.com", "xy@z.test"])  # three alignments
@pytest.mark.parametrize("secret", [SECRET, TOKEN, "short-but-ok"])
def test_every_encoding_of_a_known_secret_is_masked(user: str, secret: str) -> None:
    secrets = RunSecrets()
    secrets.add(secret)
    for name, text in encodings(user, secret).items():
        masked = secrets.mask(text)
        assert MASK in masked, name
        assert_no_leak(masked, [secret])


def test_a_childs_secrets_reach_the_run_but_not_the_reverse() -> None:
    run = RunSecrets()
    tenant = run.child()
    tenant.add("tenant-secret-1")
    run.add("run-secret-2")
    assert run.mask("tenant-secret-1 run-secret-2") == f"{MASK} {MASK}"
    assert tenant.mask("run-secret-2") == "run-secret-2"


def test_short_values_are_not_registered() -> None:
    secrets = RunSecrets()
    secrets.add("abc", "", None)
    assert len(secrets) == 0 and secrets.mask("abc 535") == "abc 535"


def test_token_responses_register_every_token() -> None:
    secrets = RunSecrets()
    secrets.add_token_response({"access_token": "at-123456", "refresh_token": "rt-123456", "id_token": "it-123456",
                                "expires_in": 3599})
    assert secrets.mask("at-123456 rt-123456 it-123456") == " ".join([MASK] * 3)


@pytest.mark.parametrize("text,hidden", [
    (f"Authorization: Bearer {TOKEN}", TOKEN),
    (f"token {TOKEN} was rejected", TOKEN),
    ('{"token_type": "Bearer", "access_token": "opaque-value-1234"', "opaque-value-1234"),
    ("refresh_token=1//0gSENTINEL-refresh-token-value&x=1", "1//0gSENTINEL-refresh-token-value"),
    ("client_secret='Qx8~secret.value'", "Qx8~secret.value"),
    ("AADSTS7000215: Invalid client secret provided: 'Qx8~wrong.secret-value'.", "Qx8~wrong.secret-value"),
    ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
    ("ya29.a0AfH6SMBsentinelvalue", "ya29.a0AfH6SMBsentinelvalue"),
    ("334 VXNlcm5hbWU6\n -> c2VjcmV0LXBhc3N3b3Jk", "c2VjcmV0LXBhc3N3b3Jk"),
    ("334 UGFzc3dvcmQ6\nC: c2VjcmV0LXBhc3N3b3Jk  ", "c2VjcmV0LXBhc3N3b3Jk"),
])
def test_patterns_mask_what_the_run_does_not_know(text: str, hidden: str) -> None:
    assert hidden not in mask_secrets(text)


def test_patterns_keep_ordinary_text() -> None:
    text = "535 5.7.139 Authentication unsuccessful, basic authentication is disabled. passwordPolicies: x"
    assert mask_secrets(text) == text


def test_the_log_filter_masks_message_arguments_and_exceptions() -> None:
    secrets = RunSecrets()
    secrets.add(SECRET)
    record = logging.LogRecord("msal", logging.WARNING, __file__, 1, "response: %s", (f"x {SECRET}",), None)
    try:
        raise ValueError(f"bad {b64(SECRET)}")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    assert MaskingFilter(secrets).filter(record)
    assert_no_leak(record.getMessage() + (record.exc_text or ""), [SECRET])


# --- hostile input: 64 KiB each, must finish --------------------------------------------------------

N = 64 * 1024
ADVERSARIAL = {
    "334 then a line of spaces": "334 VXNlcm5hbWU6\n" + " " * (N - 30) + "x",
    "334 then spaces, same line": "334 VXNlcm5hbWU6" + " " * (N - 20),
    "word run after 334": "334 x\n" + "a" * (N - 10) + "!",
    "jwt-like runs": "eyJ-" * (N // 4),
    "jwt-like dots": "eyJaaaaa." * (N // 9),
    "keys without values": "password " * (N // 9),
    "key then spaces": "access_token" + " " * (N - 20),
    "bearer words": "Bearer " * (N // 7),
    "auth words": "AUTH PLAIN " * (N // 11),
    "aadsts quote run": "Invalid client secret provided " + "'" * (N - 40),
    "spaces": " " * N,
    "brackets": "[" * N,
    "reply prefixes": "535-5.7.8 " * (N // 10),
    "quotes and spaces": "' " * (N // 2),
    "gsmtp dashes": "a - " * (N // 4),
    "deep challenge": "334 " + base64.b64encode(b"[" * 3000).decode(),
}


def cpu_seconds(fn: Callable[[], object]) -> float:
    """The CPU time fn takes on this thread: unlike wall time, unaffected by other processes on a loaded machine."""
    started = time.thread_time()
    fn()
    return time.thread_time() - started


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_hostile_input_is_masked_and_explained_in_linear_time(name: str) -> None:
    """64 KiB each, under a second of CPU each (linear passes take 0.02-0.4 s; the quadratic patterns they replace
    took 40 s and more on these inputs)."""
    text = ADVERSARIAL[name][:N]
    secrets = RunSecrets()
    secrets.add(SECRET, TOKEN)
    catalogue = load_catalogue()
    explain("warm-up", catalogue)
    results: dict[str, object] = {}
    assert cpu_seconds(lambda: results.update(mask=secrets.mask(text))) < 1.0
    assert cpu_seconds(lambda: results.update(explain=explain(text, catalogue))) < 1.0
    masked = results["mask"]
    assert isinstance(masked, str) and len(masked) <= len(text) + len(MASK)


def _own_words(regex: re.Pattern[str]) -> dict[str, str]:
    """The pattern's first literal word, and all its literal words, each repeated to 64 KiB. A pattern like
    `word.*other` backtracks quadratically exactly on a long run of `word` without `other`."""
    words = re.findall(r"[A-Za-z][A-Za-z0-9.]{2,}", regex.pattern)
    units = {"first": " ".join(words[:1]) + " ", "all": " ".join(words) + " "}
    return {kind: (unit * (N // len(unit) + 1))[:N] for kind, unit in units.items() if unit.strip()}


@pytest.mark.slow
def test_every_catalogue_pattern_is_linear_on_its_own_words() -> None:
    """explain's patterns are data: each one, and each provider's markers and noise, under a second of CPU on
    64 KiB of its own words (a linear pass takes some 0.02 s)."""
    catalogue = load_catalogue()
    patterns = {f"{cause.id}#{i}": p.regex for cause in catalogue.causes for i, p in enumerate(cause.patterns)}
    for provider in catalogue.providers:
        patterns.update({f"{provider.name}-noise#{i}": n for i, (n, _) in enumerate(provider.noise)})
        if provider.markers is not None:
            patterns[f"{provider.name}-markers"] = provider.markers
    assert len(patterns) > 50
    slow = {}
    for name, regex in patterns.items():
        for kind, text in _own_words(regex).items():
            spent = cpu_seconds(lambda r=regex, t=text: r.search(t))  # type: ignore[misc]
            if spent >= 1.0:
                slow[f"{name}-{kind}"] = round(spent, 2)
    assert not slow, slow
