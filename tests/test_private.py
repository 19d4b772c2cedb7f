"""Files written whole: on the disk before they are renamed into place, unless the caller can write them again."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from preflight import private


@pytest.mark.parametrize("durable", [True, False])
def test_a_file_is_synced_before_its_rename_only_when_durable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              durable: bool) -> None:
    events: list[str] = []
    fsync, replace = os.fsync, os.replace

    def synced(fd: int) -> None:
        events.append("fsync")
        fsync(fd)

    def renamed(src: Path, dst: Path) -> None:
        events.append("rename")
        replace(src, dst)

    monkeypatch.setattr(os, "fsync", synced)
    monkeypatch.setattr(os, "replace", renamed)
    target = tmp_path / "report.json"
    target.write_text("old")
    private.write_whole(target, ["new ", "text"], 0o600, durable=durable)
    assert target.read_text() == "new text"
    assert events == (["fsync", "rename"] if durable else ["rename"])
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temporary file left


def test_durable_is_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    fsync = os.fsync

    def counted(fd: int) -> None:
        synced.append(fd)
        fsync(fd)

    monkeypatch.setattr(os, "fsync", counted)
    private.write_whole(tmp_path / "a", "text")
    private.write_private(tmp_path / "cache" / "b", "token cache")
    assert len(synced) == 2


def test_a_failed_write_leaves_the_old_file_and_no_temporary_one(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    target.write_text("old")

    def pieces() -> Iterator[str]:
        yield "half of it"
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        private.write_whole(target, pieces(), durable=False)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
