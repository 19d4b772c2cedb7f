"""`preflight check ADDRESS` prints what a provider's MailboxChecker hook says (a failed sign-in, above all)
through the run's secrets masking, as every other command's output goes: a hook quoting a secret this run
knows, or a token a service echoed, shows neither, whether the summary goes to stdout or, beside a
machine-readable report, to stderr."""

from __future__ import annotations

import pytest

from preflight.discovery import Discovery, Lookup, Tenant
from preflight.discovery_cli import AddressCheck, run_address_check
from preflight.output import Format
from preflight.providers import Registry
from preflight.runsecrets import RunSecrets, run_scope
from tests.jwts import unsigned_jwt
from tests.leaks import assert_clean_run

KNOWN = "opaqueSENTINELaddress4f9a8b7c6d5e"  # a secret the run learned (a client secret, a token it was issued)
ECHOED = unsigned_jwt({"aud": "https://mail.tiny.test", "sentinel": "S3NT1NEL-ADDRESS"})  # one it never saw


class Tiny:
    """A provider with only the hook: its sign-in fails with a message quoting both secrets."""

    name, title = "tinymail", "TinyMail"

    def check_discovered(self, request: AddressCheck, mailbox: str, found: Discovery, unchecked: list[str]) -> int:
        request.progress(f"Signing in with {KNOWN}...")
        request.out(f"TinyMail settings not checked: sign-in failed: {found.domain} refused {KNOWN} and {ECHOED}")
        return 4


class Found:
    def discover(self, domain: str) -> Discovery:
        ok: Lookup[object] = Lookup("ok")
        return Discovery(domain, ok, ok, Tenant("not-found"), "tinymail", "MX mx.tiny.test", None)  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", [Format.table, Format.json])
def test_what_a_mailbox_hook_prints_is_masked(fmt: Format, capsys: pytest.CaptureFixture[str]) -> None:
    secrets = RunSecrets()
    secrets.add(KNOWN)
    req = AddressCheck(address="jobs@tiny.test", fmt=fmt, discoverer=Found(),  # type: ignore[arg-type]
                       registry=lambda: Registry([Tiny()]))  # type: ignore[list-item]
    with run_scope(secrets):
        code = run_address_check(req)
    out, err = capsys.readouterr()
    line = next(line for line in (out + err).splitlines() if "sign-in failed" in line)
    assert code == 4 and line.startswith("TinyMail settings not checked: sign-in failed: tiny.test refused ")
    assert_clean_run(out, err, [KNOWN, ECHOED])
