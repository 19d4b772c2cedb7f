"""`preflight check ADDRESS` for a Google-hosted domain: found from its MX on a loopback DNS server, and the
Workspace checks run with the saved profile for that domain (real google-auth against the Google fake)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from preflight.discovery import Discoverer
from preflight.discovery_cli import AddressCheck, run_address_check
from tests.conftest import run_cli
from tests.dnsserver import Zones, dns_server, resolver_for
from tests.google.fake import sample_snapshot
from tests.google.test_collect_cli import world_for

pytestmark = pytest.mark.slow


def address_check(port: int, address: str) -> AddressCheck:
    discoverer = Discoverer(resolver=resolver_for(port, lifetime=0.5), owners={})  # no tenant lookup here
    return AddressCheck(address=address, discoverer=discoverer, probe_resolver=discoverer.addresses,
                        can_ask=lambda: False, timeout=2.0)


def test_a_google_address_uses_the_domains_saved_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    snap: dict[str, Any] = sample_snapshot()
    domain = snap["tenant"]["domain"]
    box = next(iter(snap["mailboxes"]))
    fake, _ws, admin = world_for(snap, tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("PREFLIGHT_GOOGLE_PROFILE", raising=False)
    zones = Zones().add(domain, "MX", "1 smtp.google.com.")
    with fake, dns_server(zones) as port:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(fake.ca_file))
        monkeypatch.setenv("PREFLIGHT_GOOGLE_API_ROOT", fake.url)
        key = fake.key_file(tmp_path)
        code = run_address_check(address_check(port, box))
        out = capsys.readouterr().out
        assert "Google Workspace (MX smtp.google.com)" in out and "smtp.gmail.com:587" in out
        assert f"preflight login google --domain {domain}" in out and code == 1  # no profile yet; no probe host

        login, _out, err = run_cli(["login", "google", "--auth", "service-account", "--key-file", str(key),
                                    "--admin", admin, "--domain", domain], capsys)
        assert login == 0, err
        code = run_address_check(address_check(port, box))
    captured = capsys.readouterr()
    assert f"reading Google Workspace {domain}" in captured.err
    assert "Mailbox × method verdicts" in captured.out and "preflight login google" not in captured.out
    assert code == 1  # the probe found no smtp.gmail.com on this DNS server; the checks ran all the same
