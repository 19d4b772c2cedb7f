"""Reading a user-named file (preflight.files): bounded, one message style."""

from __future__ import annotations

from pathlib import Path

import pytest

from preflight.errors import InputError
from preflight.files import read_text


def test_one_message_style(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"^.*missing.txt: cannot read file \(No such file or directory\)$"):
        read_text(tmp_path / "missing.txt", 10, "a list")
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * 2049)
    with pytest.raises(InputError, match=r"^--list FILE: larger than a list can be \(2 KiB\)$"):
        read_text(big, 2048, "a list", where="--list FILE")
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"caf\xe9")
    with pytest.raises(InputError, match=r"latin.txt: not UTF-8 text$"):
        read_text(latin, 100, "a list")
    assert read_text(latin, 100, "a list", errors="replace") == "caf\ufffd"
    assert read_text(big, 4096, "a list") == "x" * 2049


def test_a_pipe_is_read_up_to_the_limit(tmp_path: Path) -> None:
    import os
    import threading

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    def feed() -> None:
        with fifo.open("wb") as fh:
            fh.write(b"y" * 5000)

    writer = threading.Thread(target=feed)
    writer.start()
    with pytest.raises(InputError, match=r"larger than a token can be \(4 KiB\)$"):
        read_text(fifo, 4096, "a token")
    writer.join()
