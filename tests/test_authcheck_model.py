"""The auth-check pieces both providers share (preflight.authcheck) and the data-file loader."""

from __future__ import annotations

import email.utils

import pytest

from preflight.authcheck import SCHEMA, Clock, ClockLimits, clock_ahead, clock_limits, envelope, exit_code
from preflight.datafiles import load_as, load_toml

LIMITS = ClockLimits(30, 300)


def test_the_clock_sign_is_local_minus_server() -> None:
    server = 1_800_000_000.0
    stamp = email.utils.formatdate(server, usegmt=True)
    assert clock_ahead(stamp, server + 119.5, server + 121.5) == 120.0  # our clock ahead: positive
    assert clock_ahead(stamp, server - 121, server - 119) == -120.5  # behind: negative
    assert clock_ahead(None, 0, 1) is None and clock_ahead("not a date", 0, 1) is None


@pytest.mark.parametrize(("ahead", "status"), [(0.0, "pass"), (-30.0, "pass"), (31.0, "warn"), (-300.0, "warn"),
                                                (301.0, "fail"), (None, "unknown")])
def test_the_clock_status_follows_the_limits(ahead: float | None, status: str) -> None:
    assert Clock(ahead, LIMITS).status == status


def test_the_clock_sentence_says_which_way() -> None:
    assert Clock(12.4, LIMITS).sentence("x.test") == "local clock is 12 s ahead of x.test"
    assert Clock(-40, LIMITS).sentence("x.test") == "local clock is 40 s behind x.test"


def test_one_exit_code_rule() -> None:
    assert [exit_code(True, True), exit_code(True, False), exit_code(False, True)] == [0, 3, 4]


def test_the_envelope_puts_schema_and_provider_first() -> None:
    doc = envelope("acme", {"principal": "p"}, Clock(1.0, LIMITS), 0)
    assert list(doc) == ["schema", "provider", "principal", "clock", "exit_code"] and doc["schema"] == SCHEMA
    assert doc["clock"] == {"ahead_seconds": 1.0, "status": "pass", "warn_after_seconds": 30,
                            "fail_after_seconds": 300}


@pytest.mark.parametrize("package", ["preflight_providers.microsoft", "preflight_providers.google"])
def test_each_provider_states_its_clock_limits_as_data(package: str) -> None:
    limits = clock_limits(load_toml(package, "data/authcheck.toml"))
    assert 0 < limits.warn_after_seconds <= limits.fail_after_seconds


def test_load_toml_hands_out_copies_and_load_as_checks_the_shape() -> None:
    first = load_toml("preflight_providers.google", "data/authcheck.toml")
    first["clock"]["warn_after_seconds"] = -1
    assert load_toml("preflight_providers.google", "data/authcheck.toml")["clock"]["warn_after_seconds"] != -1
    assert load_as("preflight_providers.google", "data/authcheck.toml", dict[str, dict[str, object]])["clock"]
    with pytest.raises(ValueError, match=r"^preflight_providers.google/data/authcheck.toml: \('clock',"):
        load_as("preflight_providers.google", "data/authcheck.toml", dict[str, dict[str, str]])
