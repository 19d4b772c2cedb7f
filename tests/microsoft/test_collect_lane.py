"""collect.Lane: one tenant's reads on the run's shared threads, at most `limit` at a time, in order."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from preflight.memo import RunMemo
from preflight.model import Method
from preflight.providers import CollectRequest
from preflight_providers.microsoft.collect import Lane
from preflight_providers.microsoft.run import collect_request
from tests.microsoft.conftest import CLIENT_ID, SECRET_ENV, load_fixture, tenant_for
from tests.microsoft.fake import FakeMicrosoft

LIVENESS = 30.0  # seconds a step may take before the test calls it stuck (never reached when correct)


def test_a_lane_runs_at_most_its_limit_at_once_and_the_rest_in_order() -> None:
    started: list[int] = []
    changed = threading.Condition()
    gates = [threading.Event() for _ in range(7)]

    def read(i: int) -> int:
        with changed:
            started.append(i)
            changed.notify_all()
        assert gates[i].wait(LIVENESS)
        return i * 10

    def started_count(n: int) -> list[int]:
        with changed:
            assert changed.wait_for(lambda: len(started) >= n, LIVENESS), started
            return list(started)

    with ThreadPoolExecutor(16) as threads:
        lane = Lane(threads, 3)
        futures = [lane.submit(read, i) for i in range(7)]
        assert started_count(3) == [0, 1, 2]
        for i in range(4):  # each read that ends lets exactly the next queued one start
            gates[i].set()
            assert futures[i].result(LIVENESS) == i * 10
            assert started_count(4 + i) == list(range(4 + i))[:7]
            assert not any(f.done() for f in futures[i + 1:])
        for gate in gates:
            gate.set()
        lane.shutdown(wait=True)
        assert [f.result(0) for f in futures] == [i * 10 for i in range(7)]
        assert started == list(range(7))


def test_a_failed_read_is_its_future_s_error_and_the_lane_goes_on() -> None:
    def read(i: int) -> int:
        if i == 1:
            raise ValueError("unreadable")
        return i

    with ThreadPoolExecutor(4) as threads, Lane(threads, 1) as lane:
        futures = [lane.submit(read, i) for i in range(4)]
    with pytest.raises(ValueError, match="unreadable"):
        futures[1].result(0)
    assert [futures[i].result(0) for i in (0, 2, 3)] == [0, 2, 3]


def test_leaving_a_lane_waits_for_every_read_it_was_given() -> None:
    release = threading.Event()
    done: list[int] = []

    def read(i: int) -> None:
        assert release.wait(LIVENESS)
        done.append(i)

    with ThreadPoolExecutor(4) as threads:
        lane = Lane(threads, 2)
        for i in range(5):
            lane.submit(read, i)
        threading.Timer(0.05, release.set).start()
        lane.shutdown(wait=True)
        assert sorted(done) == list(range(5))


def _request(domain: str, boxes: tuple[str, ...], cache: Path, memo: RunMemo) -> CollectRequest:
    return CollectRequest(settings={"tenant": domain, "client_id": CLIENT_ID, "auth": "secret",
                                    "client_secret_env": SECRET_ENV, "cloud": "fake"},
                          mailboxes=boxes, methods=tuple(Method), cache_dir=cache, memo=memo)


def test_tenants_of_one_run_read_on_shared_threads_and_collect_what_a_single_tenant_would(
        microsoft_fake: FakeMicrosoft, tmp_path: Path, secret_env: str) -> None:
    snapshot = load_fixture("oauth-app-ready")
    microsoft_fake.add_tenant(tenant_for(snapshot))
    domain, boxes = str(snapshot["tenant"]["domain"]), tuple(snapshot["mailboxes"])
    alone = collect_request(_request(domain, boxes, tmp_path / "a", RunMemo()))
    memo = RunMemo()
    first = collect_request(_request(domain, boxes, tmp_path / "b", memo))
    second = collect_request(_request(domain, boxes, tmp_path / "c", memo))
    for snap in (alone, first, second):
        snap.pop("collected_at")
    assert first == alone and second == alone
    assert repr(memo) == "RunMemo(1 entries)"  # the run's reading threads, kept once
