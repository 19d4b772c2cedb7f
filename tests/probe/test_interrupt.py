"""Ctrl-C during `probe` (tests/interrupts.py): a real SIGINT to a real process whose SMTP server holds its reply to
AUTH, i.e. while the password is in flight: exit 130 at once, one line, no traceback, no password in any form, and
no half-written report."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.interrupts import Stall, assert_interrupted, interrupt, stalled
from tests.probe.servers import Pki
from tests.probe.test_secrets import ENV, PASSWORD, USER, pki, tls_server  # noqa: F401  (fixtures)

pytestmark = pytest.mark.slow  # a TLS SMTP server and a subprocess for each Ctrl-C


@pytest.fixture
def stall() -> Iterator[Stall]:
    yield from stalled()


@pytest.mark.parametrize("auth", ["PLAIN", "LOGIN"])
def test_ctrl_c_while_auth_is_held(auth: str, stall: Stall, pki: Pki, tmp_path: Path,  # noqa: F811
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def held(send: Any, readline: Callable[[], bytes]) -> None:
        send(b"220 slow.example.test ESMTP\r\n")
        readline()
        send(b"250-slow.example.test\r\n250 AUTH PLAIN LOGIN\r\n")
        readline()
        if auth == "LOGIN":
            send(b"334 VXNlcm5hbWU6\r\n")
            readline()
            send(b"334 UGFzc3dvcmQ6\r\n")
            readline()
        stall.hold()  # the password has been sent; the reply never comes

    monkeypatch.setenv(ENV, PASSWORD)
    with tls_server(pki, held) as port:
        code, out, err = interrupt(
            ["probe", f"localhost:{port}", "--tls", "implicit", "--ca-file", str(pki.ca_file), "--timeout", "120",
             "--user", USER, "--auth", auth, "--password-env", ENV, "--format", "json", "--output", "probe.json"],
            stall, tmp_path)
    assert_interrupted(code, out, err, [PASSWORD])
    assert not (tmp_path / "probe.json").exists()
