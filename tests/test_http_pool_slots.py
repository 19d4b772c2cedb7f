"""preflight's pools keep idle connections in _Slots (no lock or condition per request) and behave as urllib3's
LifoQueue made them behave: the connection put back last is taken first, a full pool discards (closes) what
comes back beyond it, closing the pool (or collecting it) closes its idle connections; a pool that waits for
connections (block=True) keeps urllib3's queue."""

from __future__ import annotations

import gc
import queue
from typing import Any

import pytest

from preflight import deadline


class Conn:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


def pool(maxsize: int = 2, block: bool = False) -> Any:
    return deadline.pool_classes()["https"]("example.com", 443, maxsize=maxsize, block=block)


def test_the_connection_put_back_last_is_taken_first() -> None:
    p = pool()
    assert isinstance(p.pool, deadline._Slots) and p.pool.qsize() == 2
    first, second = Conn(), Conn()
    p.pool.get(block=False), p.pool.get(block=False)  # two connections out (made anew: the slots held None)
    p._put_conn(first)
    p._put_conn(second)
    assert p.pool.get(block=False) is second and p.pool.get(block=False) is first
    with pytest.raises(queue.Empty):
        p.pool.get(block=False)


def test_a_full_pool_closes_what_comes_back_beyond_it() -> None:
    p = pool(maxsize=1)
    extra = Conn()
    p._put_conn(extra)  # its one slot still holds None: no room
    assert extra.closed and p.pool.qsize() == 1


@pytest.mark.parametrize("how", ["close", "collect"])
def test_a_closed_or_collected_pool_closes_its_idle_connections(how: str) -> None:
    p = pool()
    kept = Conn()
    p.pool.get(block=False)
    p._put_conn(kept)
    if how == "close":
        p.close()
        assert p.pool is None
    else:
        del p
        gc.collect()
    assert kept.closed


def test_a_pool_that_waits_for_connections_keeps_urllib3_s_queue() -> None:
    assert isinstance(pool(block=True).pool, queue.LifoQueue)
