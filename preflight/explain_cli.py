"""`preflight explain`: read the text from the argument, a file or stdin, then print causes and fixes."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from preflight.errors import InputError

MAX_INPUT = 1024 * 1024


def _read(text: str | None, file: Path | None) -> str:
    if text is not None and file is not None:
        raise InputError("give the error text as an argument or with --file, not both")
    if text is not None:
        data = text
    elif file is not None:
        try:
            with file.open("rb") as fh:
                raw = fh.read(MAX_INPUT + 1)
        except OSError as exc:
            raise InputError(f"{file}: cannot read file ({exc.strerror or type(exc).__name__})") from None
        data = raw.decode("utf-8", errors="replace")
    elif not sys.stdin.isatty():
        data = sys.stdin.read(MAX_INPUT + 1)
    else:
        raise InputError("no error text: pass it as an argument, with --file, or on stdin")
    if len(data) > MAX_INPUT:
        raise InputError(f"error text is larger than {MAX_INPUT // 1024} KiB; paste only the server's reply")
    if not data.strip():
        raise InputError("the error text is empty")
    return data


def _installed() -> list[str]:
    from preflight.providers import Registry

    return Registry.from_entry_points().names


def run_explain(text: str | None, file: Path | None, fmt: str, provider: str | None,
                output: Path | None = None, providers: Callable[[], list[str]] = _installed) -> int:
    """`provider`: whose fixes to show, one of the installed providers' names (they are loaded only then)."""
    from preflight.causes import load_catalogue
    from preflight.explain import explain
    from preflight.output import write_text
    from preflight.wrap import wrap

    if provider is not None and provider not in (names := providers()):
        raise InputError(f"--provider: {provider!r} is not one of {', '.join(names)}")
    result = explain(_read(text, file), load_catalogue(), provider)
    if fmt == "json":
        import json  # the table, the usual output, does without: explain starts faster

        write_text(json.dumps(result.to_dict(), indent=2, ensure_ascii=False, allow_nan=False) + "\n", output)
        return 0
    out: list[str] = []
    if result.reply is not None and (result.reply.code or result.reply.enhanced):
        code = " ".join(str(x) for x in (result.reply.code, result.reply.enhanced) if x)
        out.append(wrap(f"{code} {result.reply.text}", indent="       ", first="Reply: "))
    for note in result.notes:
        out.append(wrap(note, indent="      ", first="Note: "))
    if not result.matches:
        out.append(wrap("No known cause matches this text. `preflight causes` lists what preflight knows."))
    for i, m in enumerate(result.matches, 1):
        out.append("")
        out.append(wrap(f"{m.title}  [{m.cause}, confidence {m.confidence:.0%}]", indent="   ", first=f"{i}. "))
        out.append(wrap(m.remediation, indent="        ", first="   Fix: "))
    write_text("\n".join(out) + "\n", output)
    return 0
