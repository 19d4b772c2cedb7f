"""RunMemo: what a run learns once, made once even when its tenants ask together."""

from __future__ import annotations

import threading

import pytest

from preflight.memo import RunMemo


def test_once_makes_a_value_once_for_callers_that_ask_together() -> None:
    memo = RunMemo()
    made: list[int] = []
    start = threading.Barrier(8)
    got: list[object] = []

    def make() -> object:
        made.append(1)
        return object()

    def ask() -> None:
        start.wait()
        got.append(memo.once(("p", "key"), make))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 1 and len({id(g) for g in got}) == 1
    assert memo.once(("p", "other"), lambda: "b") == "b"  # another key: its own value


def test_a_failure_is_not_kept() -> None:
    memo = RunMemo()

    def fail() -> str:
        raise ValueError("unreadable")

    with pytest.raises(ValueError):
        memo.once("k", fail)
    assert memo.once("k", lambda: "ok") == "ok"


def test_get_and_set_and_a_repr_that_shows_nothing_kept() -> None:
    memo = RunMemo()
    assert memo.get("refused") is None
    memo.set("refused", "s3cr3t-value")
    assert memo.get("refused") == "s3cr3t-value"
    assert "s3cr3t" not in repr(memo)
