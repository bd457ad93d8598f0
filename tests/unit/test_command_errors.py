"""Every command's failure is named by its command: a destroy whose data job fails says
"destroy failed", a rollback "rollback failed", an unlock "unlock failed", each with the
exit code of its kind (errors.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from swarm_deploy import cli, profiles, usecases
from swarm_deploy.errors import DeployError, JobError, RollbackError
from swarm_deploy.naming import LABEL
from swarm_deploy.pipeline import Project
from swarm_deploy.plan import RunJob
from swarm_deploy.runner import Runner
from tests.conftest import ROOT
from tests.unit import test_lock
from tests.unit.swarm_sim import Sim, use_sim
from tests.unit.test_interrupts import FakeTime, Notes


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    """The local profile, with what its templates and secret files read."""
    shutil.copytree(ROOT / "examples/gaia/dev-secrets", tmp_path / "examples/gaia/dev-secrets")
    merged = profiles.merged_data(ROOT / "swarm-deploy.local.yml")
    (tmp_path / "swarm-deploy.yml").write_text(yaml.safe_dump(merged, sort_keys=False))
    return tmp_path / "swarm-deploy.yml"


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Sim:
    the_sim = Sim()
    use_sim(monkeypatch, the_sim)
    return the_sim


def invoke(config_path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli.main, [*args, "--config", str(config_path)])
    return result.exit_code, result.stderr


def test_a_destroy_whose_data_job_fails_says_destroy_failed(
    config_path: Path, sim: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It said "deploy failed:", the JobError being a DeployError."""
    shared = {f"{LABEL}.app": "gaia", f"{LABEL}.slug": "shared"}
    sim.secrets["gaia-shared-postgres_admin-1"] = {**shared, f"{LABEL}.key": "postgres_admin"}
    sim.secrets["gaia-shared-redis_admin-1"] = {**shared, f"{LABEL}.key": "redis_admin"}
    sim.secrets["gaia-develop-session_key-1"] = {f"{LABEL}.app": "gaia", f"{LABEL}.slug": "develop"}

    def refused(runner: Runner, action: RunJob) -> None:
        raise JobError(action.job, "task.1 failed: task: non-zero exit (1)", "ERROR:  in use")

    monkeypatch.setattr(Runner, "run_job", refused)
    code, said = invoke(config_path, "destroy", "-b", "develop", "--drop-data")
    assert (code, said) == (
        1,
        "destroy failed: job gaia-develop-db failed: task.1 failed: task: non-zero exit (1)\n"
        "ERROR:  in use\n",
    )


def test_a_rollback_with_nothing_to_go_back_to_says_rollback_failed(
    config_path: Path, sim: Sim
) -> None:
    code, said = invoke(config_path, "rollback", "-b", "develop")
    assert (code, said) == (
        1,
        "rollback failed: no earlier release of develop is recorded on the target, so there "
        "is nothing to roll back to; deploy one: `swarm-deploy deploy --branch develop "
        "--release <git sha>`\n",
    )


def test_an_unlock_refused_says_unlock_failed(
    config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It said "error:", the refusal being a LockError like any other."""
    sim = test_lock.manager()
    test_lock.put(sim, test_lock.holder(), test_lock.ago(60), test_lock.ago(10))
    use_sim(monkeypatch, sim)
    code, said = invoke(config_path, "unlock", "-b", "develop")
    since = f"{test_lock.ago(60):%Y-%m-%dT%H:%M:%SZ}"
    assert (code, said) == (
        2,
        "unlock failed: the lock of branch develop is held by a deploy of develop abc that is "
        f"alive: ci (deploy of develop abc, pid 4000000 on {test_lock.HOST}) since {since}, "
        "60s ago; last heartbeat 10s ago.\nStop it where it runs (Ctrl-C, or cancel its CI "
        "job): its lock then frees itself 30s after its last heartbeat\n",
    )


def test_a_rollback_the_gate_stops_is_a_rollback_error_caused_by_the_deploys(
    config_path: Path, sim: Sim
) -> None:
    project = Project.load(config_path)
    for release in ("r1", "r2"):
        request = usecases.DeployRequest(project, "develop", release)
        usecases.deploy(request, Notes(), FakeTime().clock())
    sim.failing.add("r1")
    with pytest.raises(RollbackError) as stopped:
        usecases.rollback(usecases.RollbackRequest(project, "develop"), Notes(), FakeTime().clock())
    assert type(stopped.value.__cause__) is DeployError  # the Deployer's, after its undo
    assert str(stopped.value) == str(stopped.value.__cause__)
    assert str(stopped.value).startswith("gate for blue: no 3 consecutive 200s")
