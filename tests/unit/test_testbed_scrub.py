"""scrub, the engine tests' cleanup, against an engine that removes containers itself."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from bench.testbed import scrub
from docker.errors import APIError


def conflict(status: int, explanation: str) -> APIError:
    response = requests.Response()
    response.status_code = status
    return APIError("removing a container", response=response, explanation=explanation)


class Engine:
    """The low-level API calls scrub makes: one stopped container of the app, which the
    engine is already removing when scrub asks (as Swarm does after a service's removal)."""

    def __init__(self, error: APIError) -> None:
        self.error = error
        self.left = [{"Id": "c1", "Names": ["/gaia-develop_backend.1.x"]}]
        self.removed: list[str] = []

    def services(self) -> list[Any]:
        return []

    def containers(self, all: bool) -> list[Any]:
        return list(self.left) if all else []

    def remove_container(self, container: str, force: bool) -> None:
        self.left = []  # the engine's own removal finishes
        raise self.error

    def secrets(self, filters: dict[str, str]) -> list[Any]:
        return []

    def configs(self) -> list[Any]:
        return []

    def networks(self) -> list[Any]:
        return [{"Name": "gaia-develop", "Id": "n1"}]

    def remove_network(self, network: str) -> None:
        self.removed.append(network)

    def volumes(self) -> dict[str, Any]:
        return {"Volumes": None}


def test_a_container_the_engine_is_already_removing_is_no_error() -> None:
    engine = Engine(conflict(409, "removal of container c1 is already in progress"))
    scrub("gaia", engine)
    assert engine.removed == ["n1"]


def test_any_other_refusal_is_raised() -> None:
    engine = Engine(conflict(409, "You cannot remove a running container c1"))
    with pytest.raises(APIError):
        scrub("gaia", engine)
