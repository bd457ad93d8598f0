"""`swarm-deploy init` on each Compose fixture, read by the real docker CLI's loader.

Each shape under tests/fixtures/compose/ holds the app (compose.yaml, .env, its files)
and what init must make of it: expected.swarm-deploy.yml, the config, and
expected-report.txt, the report after its `wrote ...` line. The config written must pass
`check` (with the repository's template folders next to it), and no value of any
fixture's .env may appear in a written file or in init's output.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from swarm_deploy import cli, usecases
from swarm_deploy.pipeline import Project
from swarm_deploy.secrets import parse_env
from tests.conftest import ROOT

FIXTURES = ROOT / "tests/fixtures/compose"
SHAPES = sorted(path.name for path in FIXTURES.iterdir() if (path / "compose.yaml").is_file())


# until the templates are packaged, check reads them next to the config
@dataclass(frozen=True)
class Initialised:
    shape: str
    app: Path
    result: Result


def init_in(app: Path, *args: str) -> Result:
    return CliRunner().invoke(cli.main, ["init", *args], catch_exceptions=False)


@pytest.fixture(params=SHAPES)
def initialised(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Initialised:
    shape = str(request.param)
    app = tmp_path / shape
    shutil.copytree(FIXTURES / shape, app)
    (app / "expected.swarm-deploy.yml").unlink()
    (app / "expected-report.txt").unlink()
    monkeypatch.chdir(app)
    return Initialised(shape, app, init_in(app))


def test_init_writes_the_expected_config_and_report(initialised: Initialised) -> None:
    result, app = initialised.result, initialised.app
    assert result.exit_code == 0, result.output
    expected = FIXTURES / initialised.shape
    written = (app / "swarm-deploy.yml").read_text()
    assert written == (expected / "expected.swarm-deploy.yml").read_text()
    first, *report = result.stdout.splitlines()
    assert first == f"wrote {app / 'swarm-deploy.yml'}"
    assert "\n".join(report) + "\n" == (expected / "expected-report.txt").read_text()


def test_the_written_config_passes_check(initialised: Initialised) -> None:
    assert initialised.result.exit_code == 0, initialised.result.output
    project = Project.load(initialised.app / "swarm-deploy.yml")
    checked = usecases.check(usecases.CheckRequest(project))
    assert sorted(checked.rendered) == ["main", "x"]


def sentinels() -> dict[str, str]:
    """Every value of every fixture's .env, by where it is."""
    found = {}
    for env in sorted(FIXTURES.glob("*/.env")):
        for key, value in parse_env(env.read_text(), str(env)).items():
            found[f"{env.parent.name}/.env {key}"] = value
    return found


def test_the_sentinel_list_holds_every_fixtures_values() -> None:
    assert len(sentinels()) == 10
    assert all(len(value) >= 10 for value in sentinels().values())


def test_no_env_value_in_a_written_file_or_the_output(initialised: Initialised) -> None:
    result, app = initialised.result, initialised.app
    assert result.exit_code == 0, result.output
    given = {path.relative_to(FIXTURES / initialised.shape)
             for path in (FIXTURES / initialised.shape).rglob("*")}  # fmt: skip
    files = {path.relative_to(app) for path in app.rglob("*") if not path.is_symlink()}
    assert files - given == {Path("swarm-deploy.yml")}
    written = (app / "swarm-deploy.yml").read_text()
    for where, value in sentinels().items():
        assert value not in written, where
        assert value not in result.stdout, where
        assert value not in result.stderr, where


def test_print_writes_nothing_and_shows_no_env_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = tmp_path / "env-file-credentials"
    shutil.copytree(FIXTURES / "env-file-credentials", app)
    monkeypatch.chdir(app)
    result = init_in(app, "--print")
    assert result.exit_code == 0, result.output
    assert not (app / "swarm-deploy.yml").exists()
    assert (
        result.stdout == (FIXTURES / "env-file-credentials/expected.swarm-deploy.yml").read_text()
    )
    assert result.stderr.splitlines()[0] == (
        "app: envfilecredentials, from 'env-file-credentials' (--app NAME: lower-case "
        "letters and digits, at most 20)"
    )
    for where, value in sentinels().items():
        assert value not in result.stdout + result.stderr, where


def test_a_compose_file_the_loader_refuses_is_an_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "compose.yaml").write_text(
        "services:\n  web:\n    build: .\n    profiles: [debug]\n"
    )
    monkeypatch.chdir(tmp_path)
    result = init_in(tmp_path)
    assert result.exit_code == 2
    assert result.stderr == (
        "error: compose.yaml: the docker CLI's Compose loader (`docker stack config`) refused "
        "it: services.web Additional property profiles is not allowed; make it a file `docker "
        "stack config -c compose.yaml` accepts (it knows the Compose file format 3.x: no "
        "top-level `name:`, no `profiles:`, `depends_on` as a list) and run init again\n"
    )
    assert not (tmp_path / "swarm-deploy.yml").exists()


def test_the_written_config_plans_two_branches_side_by_side(initialised: Initialised) -> None:
    assert initialised.result.exit_code == 0, initialised.result.output
    project = Project.load(initialised.app / "swarm-deploy.yml")
    app, domain = project.config.app, project.config.domain
    plans = [
        usecases.plan(usecases.PlanRequest(project, branch, "abc", environ={}))
        for branch in ("main", "feature/x")
    ]
    assert [(p.branch.host, p.branch.names.edge_stack) for p in plans] == [
        (f"www.{domain}", f"{app}-main-edge"),
        (f"feature-x-217d2b.{domain}", f"{app}-feature-x-217d2b-edge"),
    ]
    # no secret value is set here: a plan says so by name, never by value
    assert all("_unresolved" in w for p in plans for w in p.warnings)
