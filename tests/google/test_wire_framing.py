"""Replies framed as the real services frame them (chunked, gzip when asked for; tests/wire.py): a check reads the
same payloads and reaches the same verdicts as from plain Content-Length replies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from tests.google.fake import sample_snapshot
from tests.google.test_collect_cli import World, world_for
from tests.wire import FRAMINGS, Wire

pytestmark = pytest.mark.slow


def _saved(path: Path) -> dict[str, Any]:
    snap: dict[str, Any] = json.loads(path.read_text())
    return {"org": snap["org"], "mailboxes": snap["mailboxes"]}


@pytest.mark.parametrize("framing", sorted(FRAMINGS))
def test_google_reads_the_same_whatever_the_framing(framing: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("PREFLIGHT_GOOGLE_PROFILE", raising=False)
    monkeypatch.delenv("PREFLIGHT_GOOGLE_KEY_FILE", raising=False)
    snapshot = sample_snapshot()
    fake, ws, admin = world_for(snapshot, tmp_path)
    runs = []
    with fake:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(fake.ca_file))
        world = World(fake, ws, fake.key_file(tmp_path), admin, tmp_path)
        for wire in (Wire(), FRAMINGS[framing]):
            fake.wire = wire
            saved = tmp_path / f"{len(runs)}.json"
            code, out, err = run_cli(world.check_args(snapshot, "--save-snapshot", str(saved), "--format", "json"),
                                     capsys)
            assert "Traceback" not in err
            runs.append((code, json.loads(out)["targets"], _saved(saved)))
    assert runs[0] == runs[1]
    assert any(seen for seen in fake.log)
