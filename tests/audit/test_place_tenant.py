"""place_tenant where a folder of the tenant's name is there already: it keeps what write_tenant kept (the folder's
own mode, a symlink --force kept to another file system), the files arriving whole."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

import pytest

from preflight.audit.inventory import Customer
from preflight.audit.output import place_tenant, write_tenant
from preflight.audit.runner import TenantRun
from preflight.model import Method
from tests.conftest import NOW

FILES = {"snapshot.json": "{}\n", "report.html": "<html></html>\n", "action-plan.csv": "a,b\r\n1,2\r\n"}


def _staged(root: Path, key: str) -> Path:
    """The folder a worker writes into the stage: as write_tenant writes it (modes: 0600 for the snapshot)."""
    customer = Customer(key=key, name=key, provider="microsoft", settings={}, mailboxes=("a@b.example",),
                        methods=(Method.BASIC,))
    return write_tenant(TenantRun(customer, None, None, 0.0), root, NOW, files=FILES)  # type: ignore[arg-type]


def _tree(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), stat.S_IMODE(p.stat().st_mode)) for p in folder.iterdir()}


def test_an_empty_folder_of_its_name_keeps_its_own_mode(tmp_path: Path) -> None:
    """A rename would replace an empty folder, and its mode with it (0700 -> the stage folder's 0755)."""
    staged = _staged(tmp_path / "stage", "contoso")
    want = _tree(staged)
    kept = tmp_path / "out" / "contoso"
    kept.mkdir(parents=True, mode=0o700)
    assert place_tenant(staged, tmp_path / "out") == kept
    assert stat.S_IMODE(kept.stat().st_mode) == 0o700
    assert _tree(kept) == want and not staged.exists()


@pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="needs a second file system")
def test_a_kept_symlink_to_another_file_system_is_written_through(tmp_path: Path) -> None:
    """--force keeps a customer folder that is a symlink; write_tenant wrote through it, whatever file system the
    folder it names is on. Moving a staged file there fails (EXDEV): the file is written there whole instead."""
    far = Path(tempfile.mkdtemp(dir="/dev/shm"))
    try:
        if os.stat(far).st_dev == os.stat(tmp_path).st_dev:
            pytest.skip("/dev/shm is on the same file system")
        staged = _staged(tmp_path / "stage", "contoso")
        want = _tree(staged)
        (tmp_path / "out").mkdir()
        (tmp_path / "out" / "contoso").symlink_to(far)
        assert place_tenant(staged, tmp_path / "out") == tmp_path / "out" / "contoso"
        assert _tree(far) == want and not staged.exists()
        assert (tmp_path / "out" / "contoso").is_symlink()
    finally:
        for p in far.iterdir():
            p.unlink()
        far.rmdir()
