"""The installed distribution adds only `preflight` and `preflight_providers` to site-packages: the
repository's `providers/` folder is mapped to `preflight_providers` (pyproject `package-dir`), so provider
code must import itself relatively and the package list must name every package folder."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _installed_name(folder: Path) -> str:
    parts = folder.relative_to(ROOT).parts
    return ".".join(("preflight_providers", *parts[1:]) if parts[0] == "providers" else parts)


def test_the_package_list_names_every_package_folder() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    folders = {_installed_name(init.parent) for top in ("preflight", "providers")
               for init in (ROOT / top).rglob("__init__.py")}
    assert set(config["packages"]) == folders
    assert config["package-dir"] == {"preflight_providers": "providers"}


def test_provider_code_never_imports_itself_by_the_repository_folder_name() -> None:
    absolute = re.compile(r"^\s*(from|import)\s+providers\b", re.MULTILINE)
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "providers").rglob("*.py")
                 if absolute.search(p.read_text(encoding="utf-8"))]
    assert offenders == []


def test_nothing_imports_the_repository_folder_name() -> None:
    """`providers` is not installed: an import of it works only from a checkout and would load a second
    copy of every provider module next to `preflight_providers`."""
    absolute = re.compile(r"^\s*(from|import)\s+providers\b|[\"']providers\.(microsoft|google)", re.MULTILINE)
    offenders = [str(p.relative_to(ROOT)) for top in ("preflight", "tests", "benchmarks")
                 for p in (ROOT / top).rglob("*.py") if absolute.search(p.read_text(encoding="utf-8"))]
    assert offenders == []
