"""`status` on the in-memory Swarm: the live colour by the rule a deploy decides it by
(truth.reconcile: what nginx serves wins), and what it shows of each branch."""

from __future__ import annotations

from pathlib import Path

from swarm_deploy import config, deploy, status
from tests.conftest import EXAMPLE_CONFIG
from tests.unit.swarm_sim import Sim, SimExecutor, SimSwarm

CONFIG = config.load(EXAMPLE_CONFIG)
EDGE = "gaia-develop-edge_nginx"


def develop_serving_blue_labelled_green() -> Sim:
    """Both colours of develop run; the labels say green (r2) is live, but nginx serves
    blue (r1): what a deploy stopped between the labels and the switch leaves."""
    sim = Sim()
    sim.run_service(
        "gaia-develop-edge", "nginx", "nginx:1.27",
        {
            "swarm-deploy.app": "gaia", "swarm-deploy.branch": "develop",
            "swarm-deploy.slug": "develop", "swarm-deploy.service": "nginx",
            "swarm-deploy.live-colour": "green", "swarm-deploy.release": "r2",
            "swarm-deploy.deployed-at": "2026-11-30T11:00:00Z",
            "swarm-deploy.deployed-by": "ci", "swarm-deploy.image.backend": "reg/backend@r2",
        },
        ports=(8080,),
    )  # fmt: skip
    for colour, release in (("blue", "r1"), ("green", "r2")):
        for name in ("backend", "frontend"):
            sim.run_service(
                f"gaia-develop-{colour}", name, f"reg/{name}@{release}",
                {"swarm-deploy.service": name, "swarm-deploy.release": release},
            )  # fmt: skip
    sim.edge(EDGE).file = "blue"
    sim.edge(EDGE).served = "blue"
    return sim


def test_status_shows_the_colour_nginx_serves_as_a_deploy_decides_it(tmp_path: Path) -> None:
    sim = develop_serving_blue_labelled_green()
    swarm, executor = SimSwarm(sim, "local"), SimExecutor(sim, tmp_path)
    branches, shared = status.read(swarm, executor, CONFIG)
    assert branches == [
        status.BranchStatus(
            branch="develop",
            slug="develop",
            live_colour="blue",
            release="r1",
            deployed_at=None,
            deployed_by="recovered from what nginx serves",
            images={"backend": "reg/backend@r1", "frontend": "reg/frontend@r1"},
            services=(
                status.ServiceHealth("gaia-develop-blue_backend", 1, 1, ("sim",)),
                status.ServiceHealth("gaia-develop-blue_frontend", 1, 1, ("sim",)),
                status.ServiceHealth(EDGE, 1, 1, ("sim",)),
            ),
            ports=(8080,),
            problems=(
                "nginx serves blue (release r1) but the labels say green: the labels are "
                "repaired to what users get",
                "gaia-develop-green runs beside the live colour",
            ),
        )
    ]
    assert shared == ()
    facts, _ = deploy.read_facts(swarm, executor, CONFIG, CONFIG.branch("develop"))
    assert facts.live_colour == branches[0].live_colour


def test_without_an_answer_from_nginx_status_falls_back_to_its_file(tmp_path: Path) -> None:
    sim = develop_serving_blue_labelled_green()
    del sim.services[EDGE]  # no task to exec in: nginx cannot be asked
    sim.run_service(
        "gaia-develop-edge", "nginx", "nginx:1.27",
        {"swarm-deploy.app": "gaia", "swarm-deploy.service": "nginx",
         "swarm-deploy.branch": "develop", "swarm-deploy.live-colour": "green"},
    ).replicas = 0  # fmt: skip
    (branch,), _ = status.read(SimSwarm(sim, "local"), SimExecutor(sim, tmp_path), CONFIG)
    assert (branch.live_colour, branch.problems[0]) == (
        "green",
        "could not read what nginx serves; using the labels",
    )


def test_a_deploy_reads_when_each_edge_of_the_app_was_created(tmp_path: Path) -> None:
    """The week's certificates are counted from these (certificates.py)."""
    sim = develop_serving_blue_labelled_green()
    swarm, executor = SimSwarm(sim, "local"), SimExecutor(sim, tmp_path)
    facts, _ = deploy.read_facts(swarm, executor, CONFIG, CONFIG.branch("feature/x"))
    assert dict(facts.edges_created) == {EDGE: sim.services[EDGE].created}
