"""PackagedProvider.preload: what an audit warms once before it forks its worker processes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from preflight.providers import PackagedProvider


def test_preload_imports_each_module_and_runs_its_own_preload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    package = tmp_path / "warmprov"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "warm.py").write_text("WARMED = []\n\ndef preload():\n    WARMED.append(1)\n")
    (package / "plain.py").write_text("preload = 'not callable'\n")
    (package / "data" / "permissions.toml").write_text('"Directory.Read.All" = "read the directory"\n')
    monkeypatch.syspath_prepend(str(tmp_path))

    class Provider(PackagedProvider):
        audit_imports = (".warm", ".plain")

    provider = Provider("warmprov", "warm", "Warm")
    provider.preload()
    assert sys.modules["warmprov.warm"].WARMED == [1]
    assert "warmprov.plain" in sys.modules
    assert provider.permissions() == {"Directory.Read.All": "read the directory"}
    for name in ("warmprov", "warmprov.warm", "warmprov.plain"):
        sys.modules.pop(name, None)


def test_permissions_are_read_once_and_cannot_be_changed_by_a_caller() -> None:
    from preflight.providers import Registry

    provider = Registry.from_entry_points().get("microsoft")
    first = provider.permissions()
    assert first is provider.permissions() and first
    with pytest.raises(TypeError):
        first["Directory.Read.All"] = "changed"  # type: ignore[index]


def test_an_audit_warms_each_provider_with_its_customers_and_hands_the_memo_to_its_workers(tmp_path: Path) -> None:
    from preflight.audit import runner
    from preflight.audit.inventory import Customer, Inventory
    from preflight.causes import load_catalogue
    from preflight.memo import RunMemo
    from preflight.model import Method
    from preflight.providers import Registry
    from preflight.runsecrets import RunSecrets
    from tests.conftest import NOW

    warmed: list[tuple[list[dict[str, str]], RunMemo]] = []
    registry = Registry.from_entry_points()
    google = registry.get("google")
    assert isinstance(google, PackagedProvider)

    def warm(settings: list[dict[str, str]], memo: RunMemo) -> None:
        warmed.append((list(settings), memo))
        memo.set(("test", "warmed"), True)

    google.warm = warm  # type: ignore[method-assign]
    try:
        customers = tuple(Customer(key=f"c{i}", name=f"C{i}", provider=p, settings={"n": str(i)},
                                   mailboxes=("a@b.example",), methods=(Method.BASIC,))
                          for i, p in enumerate(["google", "microsoft", "google"]))
        _tasks, _results, workers = runner._workers(Inventory(tmp_path, customers, 2), registry, load_catalogue(),
                                                    NOW, tmp_path, RunSecrets(), None, 2, None, False, False)
    finally:
        del google.warm
    (settings, memo), = warmed
    assert settings == [{"n": "0"}, {"n": "2"}]
    assert all(w._args[-1] is memo for w in workers) and memo.get(("test", "warmed"))


def test_microsoft_preload_reads_what_each_tenants_sign_in_would() -> None:
    from preflight.providers import Registry
    from preflight_providers.microsoft import auth

    auth.signin_data.cache_clear()
    Registry.from_entry_points().get("microsoft").preload()
    assert "msal_extensions" in sys.modules and auth.signin_data.cache_info().currsize == 1
