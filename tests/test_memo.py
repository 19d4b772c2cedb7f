"""RunMemo: what a run learns once, made once even when its tenants ask together."""

from __future__ import annotations

import os
import threading

import pytest

from preflight.memo import RunMemo
from tests.conftest import in_child


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


def test_the_run_reads_on_one_pool_of_threads_per_process() -> None:
    memo = RunMemo()
    assert memo.reading_threads() is memo.reading_threads()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork only")
def test_a_forked_process_reads_on_threads_of_its_own() -> None:
    memo = RunMemo()
    parent = memo.reading_threads()
    assert parent.submit(os.getpid).result() == os.getpid()

    def child() -> bytes:
        own = memo.reading_threads()
        return b"own" if own is not parent and own.submit(os.getpid).result(timeout=30) == os.getpid() else b"parent's"

    assert in_child(child) == b"own"
