"""Replies framed as the real services frame them (chunked, gzip when asked for; tests/wire.py): a check reads the
same payloads and reaches the same verdicts as from plain Content-Length replies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from tests.microsoft.conftest import load_fixture, tenant_for
from tests.microsoft.fake import FakeMicrosoft
from tests.microsoft.test_collect_cli import check_args, targets
from tests.wire import FRAMINGS, Wire

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("isolated", "secret_env")]


def _saved(path: Path) -> dict[str, Any]:
    snap: dict[str, Any] = json.loads(path.read_text())
    return {"org": snap["org"], "mailboxes": snap["mailboxes"]}


@pytest.mark.parametrize("framing", sorted(FRAMINGS))
def test_microsoft_reads_the_same_whatever_the_framing(framing: str, microsoft_fake: FakeMicrosoft, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    snapshot = load_fixture("oauth-app-ready")
    microsoft_fake.add_tenant(tenant_for(snapshot))
    runs = []
    for wire in (Wire(), FRAMINGS[framing]):
        microsoft_fake.wire = wire
        saved = tmp_path / f"{len(runs)}.json"
        code, out, err = run_cli([*check_args(snapshot), "--save-snapshot", str(saved), "--format", "json"], capsys)
        assert "Traceback" not in err
        runs.append((code, targets(out), _saved(saved)))
    assert runs[0] == runs[1]
