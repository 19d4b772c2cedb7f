"""`probe --token-from microsoft` against a malicious SMTP server echoing the XOAUTH2 exchange back (raw, base64,
decoded, as JSON, inside a 334 challenge): the token Entra issued, and the sending app's client secret, appear in no
output, transcript or report file, in any encoding (the issue's 'with probe --token-from microsoft the issued
token')."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.leaks import assert_clean_run, assert_no_leak
from tests.probe.servers import Pki
from tests.probe.test_secrets import echo_everything, tls_server
from tests.probe.test_token import SECRET, SECRET_ENV, ExchangeOnlineFake, _microsoft_args, _probe, entra, pki  # noqa: F401

pytestmark = pytest.mark.slow  # the Entra fake, msal and a TLS SMTP server


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_an_echoing_server_never_shows_the_issued_token(
        fmt: str, entra: ExchangeOnlineFake, pki: Pki, tmp_path: Path,  # noqa: F811
        capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "probe.out"
    with tls_server(pki, echo_everything) as port:
        run = _probe(capsys, *_microsoft_args(port, pki, "--tls", "implicit", "--client-secret-env", SECRET_ENV,
                                       "--format", fmt, "--output", str(report)))
    assert entra.issued, run.err
    text = report.read_text(encoding="utf-8")
    assert "you sent" in text and "********" in text, "the echoed reply is reported, masked"
    assert_clean_run(run.out + text, run.err, [SECRET, *entra.issued])
    assert_no_leak(text, [SECRET, *entra.issued])
    assert run.code != 0
