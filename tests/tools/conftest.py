"""Fixtures of the tests that run the rendered edge in a real nginx."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.tools.edge_nginx import EchoBackend


@pytest.fixture(scope="module")
def backend() -> Iterator[EchoBackend]:
    """One echo server standing in for every colour service of a module's tests."""
    server = EchoBackend()
    yield server
    server.shutdown()
