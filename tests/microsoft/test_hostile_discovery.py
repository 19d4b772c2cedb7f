"""`preflight check ADDRESS` (discovery, probe, and the tenant's checks through Microsoft's public clients) when
Graph and Exchange quote the bearer token back in every error: with --debug on, no token the device-code sign-in
obtained (access, refresh, ID) appears in the output or the log, in any encoding, and nothing is a traceback."""

from __future__ import annotations

from typing import Any

import pytest

from preflight.discovery_cli import run_address_check
from preflight.logs import enable_debug, masked_logging
from preflight.output import Format
from preflight.runsecrets import RunSecrets, run_scope
from tests.leaks import assert_clean_run
from tests.microsoft.fake import Call, Reply
from tests.microsoft.test_discovery import NetworkGuard, check, dns, pki, world  # noqa: F401  (fixtures)
from tests.microsoft.test_public_signin import public_tenant

pytestmark = pytest.mark.slow  # DNS, an SMTP server and the Microsoft fake


@pytest.mark.parametrize("fmt", [Format.table, Format.json])
def test_check_address_with_apis_quoting_the_token_leaks_nothing(
        fmt: Format, world: dict[str, Any], monkeypatch: pytest.MonkeyPatch,  # noqa: F811
        capsys: pytest.CaptureFixture[str]) -> None:
    fake = world["fake"]
    fake.add_tenant(public_tenant())
    NetworkGuard(monkeypatch)

    def echo(call: Call) -> Reply | None:
        if call.api in ("graph", "exchange") and fake.issued:
            said = " ".join(f"token {t}" for t in fake.issued)
            return Reply(403, {"error": {"code": "Forbidden", "message": said}})
        return None

    fake.fault = echo
    secrets = RunSecrets()  # what main() makes for the run
    with masked_logging(secrets), run_scope(secrets):
        enable_debug()
        req = check("alice@contoso.com", world["dns"], world["smtp"], world["pki"], can_ask=lambda: True,
                    ask=lambda _q: True, fmt=fmt)
        code = run_address_check(req)
    out, err = capsys.readouterr()
    assert fake.issued and fake.calls("graph"), err
    assert code in (3, 4), out + err
    assert "debug: " in err and "Forbidden" in out + err
    assert_clean_run(out, err, fake.issued)
