"""`preflight audit`'s own process, as its runner sets it up."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import typer

DEMO = Path(__file__).resolve().parents[2] / "docs" / "examples" / "demo-inventory.toml"


def test_the_audit_command_keeps_its_freed_memory_as_its_workers_do(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from preflight.audit import runner
    from preflight.audit.cli import audit

    asked: list[int] = []  # the processes that asked, as each sees it (a worker forks with its own copy)

    def keep() -> bool:
        asked.append(os.getpid())
        return True

    monkeypatch.setattr(runner, "keep_freed_memory", keep)
    with pytest.raises(typer.Exit):
        audit(str(DEMO), output_dir=tmp_path / "out")
    assert asked == [os.getpid()]
    assert (tmp_path / "out" / "report.json").is_file()
