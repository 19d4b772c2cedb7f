"""The msal token cache on disk: one file per tenant and account, readable only by its owner.

Encrypted through msal-extensions (libsecret, Keychain, DPAPI) when that works on this machine; otherwise
a plain JSON file created with mode 0600, and the user is told so. Files are written atomically so an
interrupted run never leaves a half-written cache.
"""

from __future__ import annotations

import functools
import os
import re
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from preflight.errors import first_line
from preflight.private import private_dir, write_private, write_whole

APP_PREFIX = "app-"
SUFFIX = ".json"
_UNSAFE = re.compile(r"[^a-z0-9@._-]")

PersistenceFactory = Callable[[str], Any]
# What msal-extensions needs to encrypt, per platform: macOS (Keychain) and Windows (DPAPI) need nothing.
ENCRYPTION_HINT = {
    "linux": "install libsecret with its Python bindings (for example `apt install gir1.2-secret-1 gnome-keyring` "
             "and `pip install PyGObject`) and run preflight in a session with an unlocked keyring",
    "darwin": "unlock the login keychain (security unlock-keychain)",
    "win32": "run preflight as the signed-in Windows user (DPAPI)",
}
# The notice is for the person, once per run, not once per tenant or cache file.
_TOLD: set[str] = set()


def default_root() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("preflight", appauthor=False)) / "microsoft"


def tenant_dir(root: Path, cloud: str, tenant: str) -> Path:
    return root / _safe(cloud) / _safe(tenant)


def _safe(name: str) -> str:
    return _UNSAFE.sub("_", name.lower()) or "_"


def account_file(directory: Path, account: str) -> Path:
    return directory / f"{_safe(account)}{SUFFIX}"


def app_file(directory: Path, client_id: str) -> Path:
    return directory / f"{APP_PREFIX}{_safe(client_id)}{SUFFIX}"


def cached_accounts(directory: Path) -> list[str]:
    """Accounts with a delegated sign-in cached for this tenant (file names, without the suffix)."""
    if not directory.is_dir():
        return []
    return sorted(
        p.name[: -len(SUFFIX)] for p in directory.iterdir()
        if p.name.endswith(SUFFIX) and not p.name.startswith((APP_PREFIX, "."))
    )


@functools.cache
def _keyring_unusable() -> str | None:
    """Why msal-extensions' keyring bindings do not import on this machine (Linux: libsecret through gi), or
    None. Python runs a module again at every import that failed before, which cost more CPU than the rest of a
    tenant's cache handling: the bindings are tried once per process."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import msal_extensions.libsecret  # noqa: F401
    except Exception as exc:  # ImportError, or gi's ValueError for a missing typelib
        return str(exc)
    return None


def _encrypted_persistence(location: str) -> Any:
    unusable = _keyring_unusable()
    if unusable is not None:
        raise ImportError(unusable)
    from msal_extensions import build_encrypted_persistence

    return build_encrypted_persistence(location)


class TokenCache:
    """Opens the msal cache for one file and saves it when msal changed it."""

    def __init__(
        self,
        path: Path,
        *,
        persistence: PersistenceFactory | None = _encrypted_persistence,
        warn: Callable[[str], object] = lambda msg: sys.stderr.write(msg + "\n"),
        durable: bool = True,
    ) -> None:
        self.path = path
        self.encrypted = False
        # False for an app-only cache: a file the operating system's crash loses costs no more than one silent
        # client-credentials request the next run (a delegated cache holds a person's sign-in: it is synced).
        self.durable = durable
        self._persistence = persistence
        self._warn = warn
        self._cache: Any = None

    def open(self) -> Any:
        """An msal SerializableTokenCache (a PersistedTokenCache when encryption is available)."""
        import msal

        if self._persistence is not None:
            try:
                from msal_extensions import PersistedTokenCache

                private_dir(self.path.parent)
                persisted = PersistedTokenCache(self._persistence(str(self.path)))
                if persisted.is_encrypted:
                    self.encrypted = True
                    self._cache = persisted
                    return persisted
            except Exception as exc:
                reason = first_line(exc)
                if "plain" not in _TOLD:
                    _TOLD.add("plain")
                    hint = ENCRYPTION_HINT.get(sys.platform, ENCRYPTION_HINT["linux"])
                    self._warn(
                        f"Note: the token cache is not encrypted on this machine ({reason[:120]}). Tokens are kept "
                        f"in files only you can read (mode 0600) under {self.path.parent.parent.parent}. "
                        f"To have them encrypted, {hint}."
                    )
        cache = msal.SerializableTokenCache()
        text = self._read_plain()
        if text:
            try:
                cache.deserialize(text)
            except ValueError:  # a truncated or foreign file: sign in afresh rather than fail
                self._warn(f"Token cache {self.path} is unreadable; it will be replaced at the next sign-in.")
                cache = msal.SerializableTokenCache()
        self._cache = cache
        return cache

    def _read_plain(self) -> str | None:
        try:
            info = self.path.stat()
        except FileNotFoundError:
            return None
        if stat.S_IMODE(info.st_mode) & 0o077:
            # Someone widened the permissions: tighten them before reading tokens out of it.
            os.chmod(self.path, 0o600)
            self._warn(f"Token cache {self.path} was readable by others; its mode is now 0600.")
        return self.path.read_text(encoding="utf-8")

    def serialize(self) -> str:
        return str(self._cache.serialize()) if self._cache is not None else "{}"

    def save(self) -> None:
        cache = self._cache
        if cache is None or self.encrypted:  # PersistedTokenCache writes through on every change
            return
        if cache.has_state_changed:
            if self.durable:
                write_private(self.path, cache.serialize())
            else:
                private_dir(self.path.parent)
                write_whole(self.path, cache.serialize(), 0o600, durable=False)
            cache.has_state_changed = False

    def clear(self) -> list[Path]:
        """Forget every token in this cache: empty the keyring entry if there is one, delete the files."""
        if self._persistence is not None:
            try:
                persistence = self._persistence(str(self.path))
                if persistence.is_encrypted:
                    persistence.save("{}")
            except Exception:
                pass
        removed = []
        for candidate in (self.path, self.path.with_name(self.path.name + ".lockfile")):
            if candidate.exists():
                candidate.unlink()
                removed.append(candidate)
        return removed
