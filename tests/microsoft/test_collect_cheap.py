"""What an audit reads once or builds cheaply per tenant stays what it was: the clouds file, $batch request ids."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from preflight.errors import InputError
from preflight_providers.microsoft import clouds
from preflight_providers.microsoft.clouds import EXTRA_CLOUDS_ENV, get_cloud
from tests.microsoft.fake import ExchangeItem, FakeMicrosoft
from tests.microsoft.test_collect import cloned_mailboxes, run_collect

CLOUD = '[mine]\nlogin = "{host}"\ngraph = "g.test"\nexchange = "e.test"\ngraph_scope = "https://g.test/.default"\n' \
        'exchange_scope = "https://e.test/.default"\n'


def test_the_clouds_file_is_parsed_again_only_when_it_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    parsed: list[str] = []
    real_loads = tomllib.loads

    def loads(text: str) -> dict[str, Any]:
        if "[mine]" in text:  # the extra file, not the built-in one
            parsed.append(text)
        return real_loads(text)

    monkeypatch.setattr(clouds.tomllib, "loads", loads)
    path = tmp_path / "clouds.toml"
    path.write_text(CLOUD.format(host="login.one.test"), encoding="utf-8")
    monkeypatch.setenv(EXTRA_CLOUDS_ENV, str(path))
    assert get_cloud("mine").login == "login.one.test"
    assert get_cloud("mine").login == "login.one.test" and get_cloud("global").login == "login.microsoftonline.com"
    assert len(parsed) == 1
    path.write_text(CLOUD.format(host="login.second.test"), encoding="utf-8")  # another size: changed
    assert get_cloud("mine").login == "login.second.test" and len(parsed) == 2
    other = tmp_path / "other.toml"
    other.write_text(CLOUD.format(host="login.other.test"), encoding="utf-8")
    monkeypatch.setenv(EXTRA_CLOUDS_ENV, str(other))
    assert get_cloud("mine").login == "login.other.test" and len(parsed) == 3
    other.unlink()
    with pytest.raises(InputError, match="cannot read clouds file"):
        get_cloud("mine")  # a file that went away is an error, not the clouds it held
    monkeypatch.delenv(EXTRA_CLOUDS_ENV)
    with pytest.raises(InputError, match="unknown cloud 'mine'"):
        get_cloud("mine")


def test_a_caller_changing_its_clouds_changes_nobody_else_s(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(EXTRA_CLOUDS_ENV, raising=False)
    mine = clouds.load_clouds()
    mine.pop("global")
    assert "global" in clouds.load_clouds()


def test_exchange_batch_ids_are_unique_random_hex_each_round(microsoft_fake: FakeMicrosoft, microsoft_cloud: Any,
                                                             tmp_path: Path) -> None:
    seen: list[str] = []

    def record(items: list[ExchangeItem], responses: list[dict[str, Any]]) -> list[Any]:
        seen.extend(item.id for item in items)
        return responses

    expected = cloned_mailboxes(25)
    microsoft_fake.exchange_batch_tamper = record
    run_collect(microsoft_fake, microsoft_cloud, tmp_path, expected)
    assert len(seen) > 50 and len(set(seen)) == len(seen)
    assert all(re.fullmatch(r"[0-9a-f]{32}", rid) for rid in seen)
