"""A malicious SMTP server on loopback: it echoes every AUTH form back (plain, base64, decoded, inside a 334
challenge), sends replies that never end or nest thousands deep, trickles bytes, or stalls TLS. The probe
must show none of the secret in any encoding, never print a traceback, and end within its bound."""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from preflight.cli import main
from tests.leaks import assert_clean_run, assert_no_leak
from tests.probe.servers import Pki, make_pki, scripted_server

pytestmark = pytest.mark.slow

PASSWORD = "Pw-S3ntinel/+=é&x%9"  # characters that escape differently in JSON, URLs and base64
TOKEN = "eyJ0eXAiOiJKV1QifQ.eyJzZW50aW5lbCI6InRva2VuIn0.c2lnbmF0dXJlLXNlbnRpbmVs"
OPAQUE = "ya29.a0SENTINEL-opaque-google-token-value"
USER = "jobs@contoso.com"
ENV, TOKEN_ENV = "PF_PROBE_HOSTILE_PW", "PF_PROBE_HOSTILE_TOKEN"
FAST = "2"  # seconds per phase; every hostile server below is cut by it


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


Script = Callable[[Any, Callable[[], bytes]], None]


def tls_server(pki: Pki, talk: Script) -> Any:
    """An implicit-TLS server running `talk(send, readline)` on each connection."""
    ctx = pki.server_context(pki.good)

    def script(conn: socket.socket, stop: threading.Event) -> None:
        with ctx.wrap_socket(conn, server_side=True) as tls:
            reader = tls.makefile("rb")
            talk(tls.sendall, lambda: reader.readline(65536).rstrip(b"\r\n"))

    return scripted_server(script)


def echo_everything(send: Any, readline: Callable[[], bytes]) -> None:
    """Answers AUTH by echoing what it was sent, in every form: raw, decoded, base64, JSON, in a 334."""
    send(b"220 evil.example.test ESMTP\r\n")
    readline()
    send(b"250-evil.example.test\r\n250 AUTH PLAIN LOGIN XOAUTH2 OAUTHBEARER\r\n")
    line = readline()
    sent = [line]
    if line.upper() == b"AUTH LOGIN":
        send(b"334 VXNlcm5hbWU6\r\n")
        sent.append(readline())
        send(b"334 " + base64.b64encode(b"you sent " + sent[-1]) + b"\r\n")  # echoes the user, base64 again
        sent.append(readline())
    elif line.upper().startswith((b"AUTH XOAUTH2", b"AUTH OAUTHBEARER")):
        payload = base64.b64decode(line.split()[-1])
        challenge = json.dumps({"status": "401", "schemes": "bearer", "echo": payload.decode()}).encode()
        send(b"334 " + base64.b64encode(challenge) + b"\r\n")
        sent.append(readline())
    decoded = [_b64(s.split()[-1]) for s in sent if s and _b64(s.split()[-1])]
    send(b"535-5.7.8 you sent: " + b" | ".join(sent) + b"\r\n")
    for d in decoded:
        send(b"535-5.7.8 decoded: " + d.replace(b"\0", b" ").replace(b"\x01", b" ") + b"\r\n")
        send(b"535-5.7.8 json: " + json.dumps(d.decode("utf-8", "replace")).encode() + b"\r\n")
    send(b"535 5.7.8 Authentication failed\r\n")
    readline()


def _b64(data: bytes) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except ValueError:
        return b""


def deep_challenge(send: Any, readline: Callable[[], bytes]) -> None:
    send(b"220 evil.example.test ESMTP\r\n")
    readline()
    send(b"250-evil.example.test\r\n250 AUTH XOAUTH2\r\n")
    readline()
    send(b"334 " + base64.b64encode(b"[" * 3000) + b"\r\n")
    readline()
    send(b"535 5.7.3 Authentication unsuccessful\r\n")
    readline()


@pytest.fixture
def probe(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv(ENV, PASSWORD)
    monkeypatch.setenv(TOKEN_ENV, TOKEN)

    def run(*args: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exc:
            main(["probe", *args])
        out, err = capsys.readouterr()
        return int(exc.value.code or 0), out, err

    yield run


def _target(pki: Pki, port: int) -> list[str]:
    return [f"localhost:{port}", "--tls", "implicit", "--ca-file", str(pki.ca_file), "--timeout", FAST,
            "--provider", "microsoft", "--user", USER]


@pytest.mark.parametrize("fmt", ["table", "json"])
@pytest.mark.parametrize("auth", [["--auth", "PLAIN", "--password-env", ENV],
                                  ["--auth", "LOGIN", "--password-env", ENV],
                                  ["--auth", "XOAUTH2", "--token-env", TOKEN_ENV],
                                  ["--auth", "OAUTHBEARER", "--token-env", TOKEN_ENV]],
                         ids=["plain", "login", "xoauth2", "oauthbearer"])
def test_an_echoing_server_never_gets_the_secret_shown(
        auth: list[str], fmt: str, pki: Pki, probe: Any, tmp_path: Path) -> None:
    report = tmp_path / "probe.out"
    with tls_server(pki, echo_everything) as port:
        code, out, err = probe(*_target(pki, port), *auth, "--format", fmt, "--output", str(report))
    text = report.read_text(encoding="utf-8")
    assert "535" in text and "Authentication failed" in text, "the echoed reply is still reported"
    assert_clean_run(out + text, err, [PASSWORD, TOKEN])
    assert code != 0


def test_the_masked_reply_keeps_what_is_not_secret(pki: Pki, probe: Any) -> None:
    with tls_server(pki, echo_everything) as port:
        _code, out, err = probe(*_target(pki, port), "--auth", "PLAIN", "--password-env", ENV, "--format", "json")
    data = json.loads(out)
    lines = [line for p in data["phases"] for r in p.get("replies", []) for line in r["lines"]]
    assert any("decoded:" in line and USER in line and "********" in line for line in lines), lines
    assert_no_leak(out + err, [PASSWORD])


def test_a_challenge_nested_thousands_deep_is_no_recursion_error(pki: Pki, probe: Any) -> None:
    with tls_server(pki, deep_challenge) as port:
        _code, out, err = probe(*_target(pki, port), "--auth", "XOAUTH2", "--token-env", TOKEN_ENV, "--format",
                                "json")
    assert "RecursionError" not in out + err
    assert_clean_run(out, err, [TOKEN])
    assert json.loads(out)["findings"]


def test_explain_on_the_deep_challenge(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["explain", "334 " + base64.b64encode(b"[" * 3000).decode()])
    out, err = capsys.readouterr()
    assert exc.value.code == 0 and "Traceback" not in out + err


def stalled_tls(conn: socket.socket, stop: threading.Event) -> None:
    """Accepts TCP, reads the ClientHello, never answers it."""
    conn.recv(4096)
    stop.wait(30)


def slow_banner(conn: socket.socket, stop: threading.Event) -> None:
    """One byte of banner every 0.3 s: each read succeeds, the phase's total time runs out."""
    for ch in b"220 slow.example.test ESMTP " + b"x" * 1000:
        if stop.wait(0.3):
            return
        conn.sendall(bytes([ch]))


@pytest.mark.parametrize("script,tls", [(stalled_tls, "implicit"), (slow_banner, "starttls")],
                         ids=["stalled-tls", "slow-bytes"])
def test_a_stalling_server_is_cut_by_the_phase_bound(script: Any, tls: str, probe: Any, pki: Pki) -> None:
    result: dict[str, Any] = {}
    with scripted_server(script) as port:
        def go() -> None:
            result["run"] = probe(f"localhost:{port}", "--tls", tls, "--ca-file", str(pki.ca_file), "--timeout", "1",
                                  "--format", "json")
        worker = threading.Thread(target=go, daemon=True)
        worker.start()
        worker.join(60)  # a generous bound: the phase limit is 1 s; without it the probe would never end
        assert not worker.is_alive(), "the probe did not end"
    code, out, err = result["run"]
    assert "Traceback" not in out + err
    assert code != 0
    assert any("within 1 s" in str(p.get("error")) or "timed out" in str(p.get("error"))
               for p in json.loads(out)["phases"])


def test_ctrl_c_during_auth_leaks_nothing(pki: Pki, probe: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from preflight.probe import auth as sasl

    def interrupted(*_args: Any, **_kw: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(sasl, "_plain", interrupted)
    with tls_server(pki, echo_everything) as port:
        code, out, err = probe(*_target(pki, port), "--auth", "PLAIN", "--password-env", ENV)
    assert code == 130 and "interrupted" in err
    assert_clean_run(out, err, [PASSWORD])


def test_a_token_error_echoing_the_token_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    """What explain shows of a pasted reply never carries a token, even an unknown one (patterns)."""
    from preflight.causes import load_catalogue
    from preflight.explain import explain

    text = f"535 5.7.3 Authentication unsuccessful; token {TOKEN}; access_token={OPAQUE}; Bearer {OPAQUE}"
    shown = json.dumps(explain(text, load_catalogue()).to_dict())
    assert_no_leak(shown, [TOKEN, OPAQUE])
