"""The Engine API wrapper: what a failed call becomes."""

from __future__ import annotations

import pytest
import requests
from docker.errors import NotFound

from swarm_deploy import engine
from swarm_deploy.errors import TargetError


@pytest.fixture
def swarm(monkeypatch: pytest.MonkeyPatch) -> engine.Swarm:
    monkeypatch.setattr(engine.time, "sleep", lambda _: None)
    bare = engine.Swarm.__new__(engine.Swarm)  # no engine: only _call is exercised
    bare.target = "ssh://deploy@vm1"
    return bare


def failing(times: int, error: Exception) -> object:
    calls = []

    def call() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise error
        return "answer"

    return call


def test_a_dropped_connection_is_retried_once(swarm: engine.Swarm) -> None:
    dropped = requests.exceptions.ConnectionError("Connection aborted.")
    assert swarm._call("listing services", failing(1, dropped)) == "answer"
    with pytest.raises(TargetError) as lost:
        swarm._call("listing services", failing(2, dropped))
    assert str(lost.value) == (
        "lost the connection to ssh://deploy@vm1 while listing services (Connection aborted.); "
        "run the same command again: it picks up from what the target holds"
    )


def test_missing_is_none_only_when_that_is_fine(swarm: engine.Swarm) -> None:
    gone = NotFound("service x not found", explanation="service x not found")
    assert swarm._call("inspecting x", failing(1, gone), missing_ok=True) is None
    with pytest.raises(TargetError, match="inspecting x failed on ssh://deploy@vm1: service x"):
        swarm._call("inspecting x", failing(1, gone))
