"""What bench/load.py keeps of a failed answer: enough to tell who gave it."""

from __future__ import annotations

from bench.load import gist

from tests.conftest import ROOT


def test_a_page_is_told_by_its_title() -> None:
    page = (ROOT / "dagger/src/swarm_deploy/templates/nginx/maintenance.html").read_bytes()
    assert gist(page.replace(b"{{ app }}", b"gaia")) == "gaia is starting"


def test_plain_text_is_told_by_its_start() -> None:
    assert gist(b"no available server\n") == "no available server"
    assert gist(b"x" * 100) == "x" * 60
