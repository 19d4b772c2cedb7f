"""Per-customer profiles: where one customer's Google sign-in lives, apart from every other customer's.

GAM's `[section]`s are the model: one directory per profile under the user's config directory, holding
the profile's settings (which customer, which sign-in) and, for installed-app OAuth, its refresh token.
Nothing is shared between profiles, so a consultant's runs for two customers cannot mix credentials.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from preflight.errors import InputError
from preflight.private import write_private

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
DEFAULT = "default"
MAX_FILE = 256 * 1024


def config_root() -> Path:
    """<user config dir>/preflight/google (XDG_CONFIG_HOME on Linux, Application Support on macOS, ...)."""
    import platformdirs

    return Path(platformdirs.user_config_dir("preflight", appauthor=False)) / "google"


@dataclass(frozen=True)
class Profile:
    name: str
    dir: Path

    @property
    def settings_path(self) -> Path:
        return self.dir / "profile.json"

    @property
    def token_path(self) -> Path:
        return self.dir / "oauth-token.json"

    def settings(self) -> dict[str, Any]:
        """The saved settings; InputError naming the file when one of them is not text (a hand-edited file)."""
        saved = _read_json(self.settings_path) or {}
        odd = sorted(k for k in _TEXT_SETTINGS if saved.get(k) is not None and not isinstance(saved[k], str))
        if odd:
            raise InputError(f"{self.settings_path}: {odd[0]!r} is not text; remove the file and sign in again")
        return saved

    def save_settings(self, values: dict[str, Any]) -> None:
        merged = {**self.settings(), **{k: v for k, v in values.items() if v is not None}}
        write_private(self.settings_path, json.dumps(merged, indent=2, sort_keys=True) + "\n")

    def token(self) -> dict[str, Any] | None:
        return _read_json(self.token_path)

    def save_token(self, info: dict[str, Any]) -> None:
        write_private(self.token_path, json.dumps(info, indent=2, sort_keys=True) + "\n")

    def remove_token(self) -> bool:
        try:
            self.token_path.unlink()
        except FileNotFoundError:
            return False
        return True

    def forget(self) -> bool:
        if not self.dir.exists():
            return False
        shutil.rmtree(self.dir)
        return True


# What save_settings writes, each as text.
_TEXT_SETTINGS = ("account", "admin", "auth", "client_secrets", "customer_id", "domain", "key_file")


def profile(name: str | None, root: Path | None = None) -> Profile:
    name = name or DEFAULT
    if not _NAME.match(name):
        raise InputError(
            f"--profile: {name!r} is not a profile name (letters, digits, '.', '_', '-'; up to 64; not starting "
            "with a dot or dash)"
        )
    return Profile(name, (root or config_root()) / name)


def names(root: Path | None = None) -> list[str]:
    base = root or config_root()
    return sorted(p.name for p in base.iterdir() if p.is_dir() and _NAME.match(p.name)) if base.is_dir() else []


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        if path.stat().st_size > MAX_FILE:
            raise InputError(f"{path}: larger than a preflight profile file can be")
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(
            f"{path}: cannot read profile file ({type(exc).__name__}); remove it and sign in again"
        ) from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: not a preflight profile file; remove it and sign in again")
    return data
