"""The probe's overall deadline (--deadline): servers that answer every single read in time but trickle their
bytes (an SMTP reply, a TLS handshake) are cut when the whole probe's time is up, and the result names the phase
it stopped in and the phases it did not reach."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any

import pytest

from tests.leaks import assert_clean_run
from tests.probe.servers import Pki, scripted_server
from tests.probe.test_secrets import ENV, PASSWORD, USER, pki, probe, tls_server  # noqa: F401  (fixtures)

TRICKLE = 0.1  # seconds between two bytes: every read gets a byte long before its own timeout


def _trickle(send: Callable[[bytes], Any], data: bytes) -> None:
    for i in range(len(data)):
        send(data[i:i + 1])
        threading.Event().wait(TRICKLE)


def slow_smtp(send: Any, readline: Callable[[], bytes]) -> None:
    """A greeting at once, then an EHLO reply a byte at a time (about 8 s for all of it)."""
    send(b"220 slow.example.test ESMTP\r\n")
    readline()
    _trickle(send, b"250-slow.example.test greets you, very slowly indeed\r\n250 AUTH PLAIN LOGIN\r\n")
    readline()


def _run(probe: Any, *args: str) -> tuple[int, str, str]:  # noqa: F811
    box: dict[str, tuple[int, str, str]] = {}
    worker = threading.Thread(target=lambda: box.update(r=probe(*args)), daemon=True)
    worker.start()
    worker.join(60)  # generous: the deadline is 2 s; without it the probe would run as long as the server likes
    assert not worker.is_alive(), "the probe did not end"
    return box["r"]


@pytest.mark.slow
def test_a_trickling_reply_is_cut_at_the_deadline_naming_what_was_not_reached(pki: Pki, probe: Any) -> None:  # noqa: F811
    with tls_server(pki, slow_smtp) as port:
        code, out, err = _run(probe, f"localhost:{port}", "--tls", "implicit", "--ca-file", str(pki.ca_file),
                              "--timeout", "30", "--deadline", "2", "--user", USER, "--auth", "PLAIN",
                              "--password-env", ENV, "--format", "json")
    assert_clean_run(out, err, [PASSWORD])
    result = json.loads(out)
    stopped = [p for p in result["phases"] if p["status"] != "ok"]
    assert [p["phase"] for p in stopped] == ["ehlo"], result["phases"]
    assert "the probe's deadline of 2 s passed" in stopped[0]["error"]
    assert "not reached: auth" in stopped[0]["error"]
    assert code == 22  # the EHLO phase's exit code
    unknown = {f["check"]: f["message"] for f in result["findings"] if f["status"] == "unknown"}
    assert any("deadline" in m and "ehlo" in m for m in unknown.values()), result["findings"]


def trickled_tls(pki: Pki) -> Callable[[socket.socket, threading.Event], None]:  # noqa: F811
    """A TLS server sending its handshake a byte at a time: each read of the client gets a byte quickly, the
    handshake (some 1,500 bytes) would take minutes."""
    ctx = pki.server_context(pki.good)

    def script(conn: socket.socket, stop: threading.Event) -> None:
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = ctx.wrap_bio(incoming, outgoing, server_side=True)
        while not stop.is_set():
            try:
                tls.do_handshake()
                return
            except ssl.SSLWantReadError:
                pass
            data = outgoing.read()
            for i in range(len(data)):
                if stop.wait(TRICKLE):
                    return
                conn.sendall(data[i:i + 1])
            chunk = conn.recv(65536)
            if not chunk:
                return
            incoming.write(chunk)

    return script


@pytest.mark.slow
@pytest.mark.parametrize("bound", [["--timeout", "30", "--deadline", "2"], ["--timeout", "2", "--deadline", "120"]],
                         ids=["deadline", "phase-timeout"])
def test_a_trickled_tls_handshake_is_bounded_in_total(bound: list[str], pki: Pki, probe: Any) -> None:  # noqa: F811
    """A socket timeout bounds each read only: the handshake itself is bounded by the phase and the deadline."""
    with scripted_server(trickled_tls(pki)) as port:
        code, out, err = _run(probe, f"localhost:{port}", "--tls", "implicit", "--ca-file", str(pki.ca_file),
                              *bound, "--format", "json")
    result = json.loads(out)
    tls = next(p for p in result["phases"] if p["phase"] == "tls")
    assert tls["status"] == "failed" and code == 29, result["phases"]
    if bound[-1] == "2":
        assert "the probe's deadline of 2 s passed" in tls["error"] and "not reached: banner, ehlo" in tls["error"]
    else:
        assert "timed out" in tls["error"]
    assert "Traceback" not in err


def test_the_deadline_is_said_in_help_and_checked(probe: Any, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = probe("--help")
    assert code == 0 and "--deadline" in out and "(default 120)" in out
    code, out, err = probe("localhost:25", "--deadline", "0")
    assert code == 2 and "--deadline" in err and "Traceback" not in err
