"""The one log filter and the last-resort error line, through the real `main()`: whatever a command has learned is
masked in every logger's records (preflight's, msal's, urllib3's, google.auth's, requests-oauthlib's), their
arguments and tracebacks, and in the text of an exception nobody expected; without --debug a library's records
are not shown at all, with --debug a library's traceback is one line."""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable

import pytest

from preflight.cli import main
from preflight.runsecrets import for_command
from tests.leaks import assert_clean_run, assert_no_leak

SECRET = "Lg-S3NTINEL/secret+value=é&x%7"
LOGGERS = ["urllib3.connectionpool", "msal.oauth2cli.oauth2", "google.auth.transport.requests", "google.oauth2._client",
           "requests_oauthlib.oauth2_session", "preflight.http"]


def run_explain_doing(monkeypatch: pytest.MonkeyPatch, action: Callable[[], None]) -> None:
    """`preflight explain` whose body learns SECRET (as a sign-in learns a client secret) and then does `action`."""
    from preflight import explain_cli

    def fake(*_args: object) -> int:
        for_command().add(SECRET)
        action()
        return 0

    monkeypatch.setattr(explain_cli, "run_explain", fake)


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(args)
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def _log_everywhere() -> None:
    from google.auth import _helpers

    _helpers.is_logging_enabled(logging.getLogger("google.auth.transport.requests"))  # as on its first request
    encoded = base64.b64encode(f"\0jobs@contoso.com\0{SECRET}".encode()).decode()
    for name in LOGGERS:
        log = logging.getLogger(name)
        log.debug("sent %s and %r", SECRET, {"client_secret": SECRET})
        log.warning("Token response is not in json format: {\"access_token\": \"%s\"", SECRET)
        log.info("AUTH PLAIN %s", encoded)
        try:
            raise ValueError(f"could not parse {SECRET!r}")
        except ValueError:
            log.error("failed", exc_info=True)
        log.warning("%s %s", SECRET)  # arguments that do not fit the format: a third-party bug, still masked
    import warnings

    warnings.warn(f"a library warned about {SECRET}", UserWarning, stacklevel=1)


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
def test_every_loggers_records_are_masked_or_not_shown(debug: bool, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    # google-auth turns propagation off for the `google` logger tree once per process (here, maybe in an earlier
    # test): Python's last-resort handler would then print its warnings, unmasked, if the run did not handle them.
    monkeypatch.setattr(logging.getLogger("google"), "propagate", False)
    monkeypatch.setattr(logging.getLogger("google"), "handlers", [])
    parts = {".".join(name.split(".")[:i]) for name in LOGGERS for i in range(2, name.count(".") + 2)}
    for name in parts:  # whatever earlier tests in this process did to these loggers and their parents
        for attribute, value in (("disabled", False), ("handlers", [])):
            monkeypatch.setattr(logging.getLogger(name), attribute, value)
    run_explain_doing(monkeypatch, _log_everywhere)
    code, out, err = run([*(["--debug"] if debug else []), "explain", "x"], capsys)
    assert code == 0, err
    assert_no_leak(out + err, [SECRET])
    # Only preflight's own record may carry a traceback, and only under --debug; a library's is one line.
    assert err.count("Traceback") == (1 if debug else 0), err
    shown = {name for name in LOGGERS if f"{name}:" in err or name in err}
    if debug:
        assert shown == set(LOGGERS), err  # every record reached the terminal, masked
        assert "ValueError: could not parse" in err
        assert "py.warnings: " in err and "a library warned about ********" in err  # warnings are records too
    else:
        assert not shown - {"preflight.http"}, err  # a library's records are not shown without --debug
        assert "a library warned" not in err


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
def test_an_unexpected_error_quoting_a_secret_is_one_masked_line(debug: bool, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    def crash() -> None:
        raise RuntimeError(f"bug while holding {SECRET} ({base64.b64encode(SECRET.encode()).decode()})")

    run_explain_doing(monkeypatch, crash)
    code, out, err = run([*(["--debug"] if debug else []), "explain", "x"], capsys)
    assert code == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith("preflight: internal error: RuntimeError: bug while holding ********"), err
    assert_clean_run(out, err.replace("Traceback", "") if debug else err, [SECRET])
    if not debug:
        assert err.count("\n") == 1, err
