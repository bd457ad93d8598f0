"""The `swarm-deploy` command: what users type, what they see, how it fails."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from bench.testbed import copy_project
from click.testing import CliRunner

from swarm_deploy import (
    cli,
    cli_options,
    cli_output,
    engine,
    pipeline,
    sources,
    template_files,
    usecases,
    usecases_deploy,
)
from swarm_deploy.errors import DeployError
from swarm_deploy.plan import NO_URL
from tests.conftest import EXAMPLE_CONFIG, ROOT
from tests.render_helpers import SENTINELS
from tests.unit.test_plan import live_after


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(ROOT)
    for name, value in SENTINELS.items():
        monkeypatch.setenv(name, value)
    return CliRunner()


def test_plan_prints_numbered_steps_for_the_branch(runner: CliRunner) -> None:
    result = runner.invoke(
        cli.main, ["plan", "--branch", "feature/JIRA-123_add-login", "--release", "abc"]
    )
    assert result.exit_code == 0, result.output
    assert "Plan: deploy gaia branch 'feature/JIRA-123_add-login'" in result.output
    assert "https://feature-jira-123-add-login-464223.gaia.example.com" in result.output
    assert "  1. [build] build backend for linux/amd64" in result.output
    assert "$ docker build --platform linux/amd64" in result.output
    for value in SENTINELS.values():
        assert value not in result.output


def test_plan_json_is_machine_readable(runner: CliRunner) -> None:
    result = runner.invoke(
        cli.main, ["plan", "-b", "develop", "--release", "abc", "--json", "--host", "local"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["target"] == "local"
    assert data["release"] == "abc"


def test_render_writes_files_and_lists_them(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        cli.main, ["render", "-b", "develop", "--release", "abc", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "stacks" / "app-blue.yml").is_file()
    assert str(tmp_path / "nginx" / "nginx.conf") in result.output


def test_a_branch_no_rule_allows_exits_2_listing_the_rules(runner: CliRunner) -> None:
    result = runner.invoke(cli.main, ["plan", "-b", "hotfix/now"])
    assert result.exit_code == 2
    assert "error: branch 'hotfix/now' matches no rule" in result.output
    assert "  - feature/*" in result.output


def test_a_bad_config_exits_2_with_the_key_path(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "swarm-deploy.yml"
    bad.write_text(EXAMPLE_CONFIG.read_text().replace("port: 8000", "port: eighty"))
    result = runner.invoke(cli.main, ["check", "--config", str(bad)])
    assert result.exit_code == 2
    assert "error: services/backend/port: should be an integer, got 'eighty'" in result.output


def test_check_shows_every_config_error_with_its_key_path(
    runner: CliRunner, tmp_path: Path
) -> None:
    bad = tmp_path / "swarm-deploy.yml"
    text = EXAMPLE_CONFIG.read_text().replace("port: 8000", "port: eighty", 1)
    bad.write_text(text.replace("consecutive: 3", "consecutive: three"))
    result = runner.invoke(cli.main, ["check", "--config", str(bad)])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: services/backend/port: should be an integer, got 'eighty'\n"
        "error: gate/consecutive: should be an integer, got 'three'\n"
        "2 errors in the config\n"
    )


def test_an_empty_branch_name_is_refused(runner: CliRunner) -> None:
    """What `--branch "$BRANCH"` gives when the variable is not set."""
    result = runner.invoke(cli.main, ["plan", "-b", ""])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: the branch name is empty; pass the git branch name, e.g. --branch develop\n"
    )


def test_a_release_that_is_no_image_tag_is_refused(runner: CliRunner) -> None:
    result = runner.invoke(cli.main, ["plan", "-b", "develop", "--release", "v1 beta"])
    assert result.exit_code == 2
    assert "--release: should be usable as an image tag" in result.output


def test_check_reports_what_the_config_holds(runner: CliRunner) -> None:
    result = runner.invoke(cli.main, ["check"])
    assert result.exit_code == 0
    assert "ok — app gaia, 3 services, 8 shared services, 6 branch rules" in result.output


def project_copy(to: Path, template: str, change: tuple[str, str]) -> Path:
    """The example project with one template overridden by the packaged one with one
    change; returns its config."""
    copy_project(ROOT, to)
    shutil.copy(EXAMPLE_CONFIG, to / "swarm-deploy.yml")
    path = to / template
    path.parent.mkdir()
    text = template_files.packaged(template)
    assert change[0] in text
    path.write_text(text.replace(change[0], change[1], 1))
    return to / "swarm-deploy.yml"


def test_check_renders_the_templates_for_a_branch_of_each_rule(
    runner: CliRunner, tmp_path: Path
) -> None:
    """`check` used to read the templates without rendering them: a deploy found this."""
    broken = project_copy(
        tmp_path,
        "stacks/app.yml",
        (
            "    image: {{ release.images[service.image] | q }}",
            "    image: {{ release.imgae | q }}",
        ),
    )
    result = runner.invoke(cli.main, ["check", "--config", str(broken)])
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        "error: template stacks/app.yml: 'swarm_deploy.render.Release object' has no attribute "
        "'imgae'; fix the template stacks/app.yml\n"
    )
    ok = runner.invoke(cli.main, ["check"])
    assert "templates: ok — rendered for main, develop, feature-x, feature/x, renovate/x, " in (
        ok.output
    )


def test_check_without_nginx_says_where_the_nginx_config_is_tested(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no nginx there
    result = runner.invoke(cli.main, ["check"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == (
        "nginx -t: not run, nginx is not installed here; every deploy tests it again in the "
        "edge's image, nginx:1.27.2-bookworm, first"
    )


def test_missing_secrets_are_warned_about_on_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    for name in SENTINELS:
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(cli.main, ["plan", "-b", "develop", "--release", "abc"])
    assert result.exit_code == 0
    assert (
        "warning: secret session_key: value from $GAIA_SESSION_KEY is not available"
        in result.stderr
    )


def test_the_release_defaults_to_what_the_sources_say(runner: CliRunner) -> None:
    """The commit when it holds every build input, else a hash of them (test_sources.py)."""
    result = runner.invoke(cli.main, ["plan", "-b", "develop", "--json"])
    assert result.exit_code == 0, result.output
    project = pipeline.Project.load(EXAMPLE_CONFIG)
    assert json.loads(result.output)["release"] == sources.release_version(project.config)


def test_the_installed_command_runs() -> None:
    command = shutil.which("swarm-deploy")
    assert command is not None, "swarm-deploy is not on PATH: install the package (make venv)"
    result = subprocess.run([command, "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert "swarm-deploy plan --branch develop" in result.stdout


def forbidden(*args: object, **kwargs: object) -> None:
    raise AssertionError("nothing may run or connect before the arguments are checked")


@pytest.mark.parametrize(
    "command",
    [
        ["plan", "-b", "develop", "--release", "abc"],
        ["deploy", "-b", "develop", "--release", "abc"],
        ["rollback", "-b", "develop"],
        ["status"],
        ["destroy", "-b", "develop"],
        ["destroy", "--stale", "14"],
    ],
)
def test_a_bad_host_is_refused_before_anything_runs(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    """--host is checked like the config's target, by every command, before any step."""
    monkeypatch.setattr(engine.Executor, "run", forbidden)
    monkeypatch.setattr(engine.Swarm, "__init__", forbidden)
    result = runner.invoke(cli.main, [*command, "--host", "vm1.example.com:22"])
    assert result.exit_code == 2, result.output
    assert result.output == (
        "error: --host: should be 'local' or ssh://user@host[:port], got 'vm1.example.com:22'\n"
    )


def test_a_protected_branch_is_destroyed_only_with_force(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deleting the production branch's git branch (destroy.yml) leaves production alone."""
    monkeypatch.setattr(engine.Swarm, "__init__", forbidden)
    result = runner.invoke(cli.main, ["destroy", "-b", "main"])
    assert result.exit_code == 2, result.output
    assert result.output == (
        "error: branch 'main' is protected (rule 'main' in the config): destroy leaves it in "
        "place, also when its git branch is deleted; remove it with "
        "`swarm-deploy destroy --branch main --force`\n"
    )
    forced = runner.invoke(cli.main, ["destroy", "-b", "main", "--force"])
    assert isinstance(forced.exception, AssertionError), "--force goes on to the target"


def test_in_github_actions_the_deployer_is_the_actor_and_the_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {
        "GITHUB_ACTOR": "octocat",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme/gaia",
        "GITHUB_RUN_ID": "4242",
    }.items():
        monkeypatch.setenv(name, value)
    assert cli_options.deployer_name() == "octocat (https://github.com/acme/gaia/actions/runs/4242)"


@pytest.mark.parametrize(
    ("command", "function"),
    [
        (["deploy", "-b", "develop", "--release", "abc"], "deploy"),
        (["rollback", "-b", "develop"], "rollback"),
        (["destroy", "-b", "develop"], "destroy"),
    ],
)
def test_the_actor_given_is_who_is_recorded(
    runner: CliRunner,
    monkeypatch: pytest.MonkeyPatch,
    command: list[str],
    function: str,
) -> None:
    """What the Dagger deployer container passes: it has no GITHUB_ACTOR of its own."""
    seen: list[object] = []

    def record(request: object, *args: object, **kwargs: object) -> None:
        seen.append(request)
        raise DeployError("recorded")

    monkeypatch.setattr(usecases, function, record)
    who = "octocat (https://github.com/acme/gaia/actions/runs/4242)"
    result = runner.invoke(cli.main, [*command, "--actor", who])
    assert result.exit_code == 1, result.output
    assert [getattr(request, "actor", None) for request in seen] == [who]


def test_rollback_reads_the_secrets_env_file_like_deploy(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A rollback redeploys the secrets too: in the Dagger deployer they come from a file."""
    secrets_file = tmp_path / "app-secrets.env"
    secrets_file.write_text("GAIA_SESSION_KEY=from-the-file\r\n")
    seen: list[usecases.RollbackRequest] = []

    def record(request: usecases.RollbackRequest, *args: object, **kwargs: object) -> None:
        seen.append(request)
        raise DeployError("recorded")

    monkeypatch.setattr(usecases, "rollback", record)
    command = ["rollback", "-b", "develop", "--secrets-env-file", str(secrets_file)]
    result = runner.invoke(cli.main, command)
    assert result.exit_code == 1, result.output
    environ = seen[0].environ
    assert isinstance(environ, dict)
    assert environ["GAIA_SESSION_KEY"] == "from-the-file"


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (
            ["deploy", "-b", "develop", "--release", "v1 beta"],
            "error: --release: should be usable as an image tag (letters, digits, '_', '.', "
            "'-'), got 'v1 beta'\n",
        ),
        (
            ["destroy", "--stale", "-1"],
            "Invalid value for '--stale': -1.0 is not in the range x>=0.",
        ),
    ],
)
def test_bad_arguments_are_refused_before_the_target_is_touched(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, command: list[str], message: str
) -> None:
    """A deploy took the branch's lock before it looked at its release; a negative
    --stale made every unprotected branch stale."""
    monkeypatch.setattr(engine.Executor, "run", forbidden)
    monkeypatch.setattr(engine.Swarm, "__init__", forbidden)
    result = runner.invoke(cli.main, command)
    assert result.exit_code == 2, result.output
    assert message in result.output


UNUSABLE_SESSION_KEY = (
    "error: 1 secret value(s) cannot be used:\n"
    "  - session_key: value from $GAIA_SESSION_KEY is empty\n"
    "give each its real value (see secrets: in the config); a deploy would stop before "
    "changing anything\n"
)


@pytest.mark.parametrize("command", [["check"], ["plan", "-b", "develop", "--release", "abc"]])
def test_a_secret_set_but_empty_fails_check_and_plan(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    """What an unset repository secret becomes in the workflow's APP_SECRETS."""
    monkeypatch.setenv("GAIA_SESSION_KEY", "")
    result = runner.invoke(cli.main, command)
    assert result.exit_code == 2
    assert result.stderr == UNUSABLE_SESSION_KEY


@pytest.mark.parametrize("command", [["check"], ["plan", "-b", "develop", "--release", "abc"]])
def test_check_and_plan_read_the_secrets_env_file_like_deploy(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, command: list[str]
) -> None:
    """The quick start's .env: check and plan saw no value in it, and plan warned of a
    deploy that would stop, before the deploy that reads the file went through."""
    monkeypatch.setenv("GAIA_SESSION_KEY", "a-usable-value")
    env_file = tmp_path / ".env"
    env_file.write_text("GAIA_SESSION_KEY=\n")
    result = runner.invoke(cli.main, [*command, "--secrets-env-file", str(env_file)])
    assert result.exit_code == 2
    assert result.stderr == UNUSABLE_SESSION_KEY


def test_check_warns_of_a_value_the_secrets_env_file_was_meant_to_give(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """check said "ok" and exited 0 for a .env lacking a value the deploy then stopped for;
    it still exits 0 (values may come from the deploy's environment) but says which."""
    monkeypatch.delenv("GAIA_TELEGRAM_TOKEN")
    monkeypatch.delenv("GAIA_SESSION_KEY")
    env_file = tmp_path / ".env"
    env_file.write_text("GAIA_SESSION_KEY=a-usable-value\n")
    result = runner.invoke(cli.main, ["check", "--secrets-env-file", str(env_file)])
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        f"warning: secret telegram_token: value from $GAIA_TELEGRAM_TOKEN is set neither in "
        f"{env_file} nor in the environment; a deploy would stop before changing anything: "
        "add it there\n"
    )
    assert runner.invoke(cli.main, ["check"]).stderr == ""  # values come at deploy time


def test_deploy_refuses_an_unusable_secret_before_it_runs_anything(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The value comes from --secrets-env-file (the Dagger module's --app-secrets)."""

    def no_target(*args: object, **kwargs: object) -> None:
        raise AssertionError("the deploy reached for the target")

    monkeypatch.setattr(usecases_deploy, "Executor", no_target)
    monkeypatch.setattr(usecases_deploy, "open_swarm", no_target)
    env_file = tmp_path / "app-secrets.env"
    env_file.write_text("GAIA_SESSION_KEY=\nGAIA_TELEGRAM_TOKEN=  \n")
    result = runner.invoke(
        cli.main,
        ["deploy", "-b", "develop", "--release", "abc", "--secrets-env-file", str(env_file)],
    )
    assert result.exit_code == 2
    assert result.stderr == (
        "error: 2 secret(s) cannot be used, so nothing was changed:\n"
        "  - session_key: value from $GAIA_SESSION_KEY is empty\n"
        "  - telegram_token: value from $GAIA_TELEGRAM_TOKEN holds only whitespace (2 bytes)\n"
        "provide each value (see secrets: in the config) and run again\n"
    )


@pytest.mark.parametrize(
    ("branch", "again", "line"),
    [
        # a port rule without Traefik: the line said https://develop.gaia.localhost
        ("develop", False, "develop is live: blue, release abc, at http://127.0.0.1:18080\n"),
        ("feature/y", False, f"feature/y is live: blue, release abc, ({NO_URL})\n"),
        (
            "develop",
            True,
            "develop is already at abc (blue) on local: nothing to do (--force deploys it "
            "again); it answers at http://127.0.0.1:18080\n",
        ),
    ],
)
def test_the_final_line_shows_the_url_that_answers(
    capsys: pytest.CaptureFixture[str], branch: str, again: bool, line: str
) -> None:
    project = pipeline.Project.load(ROOT / "swarm-deploy.local.yml")
    the_plan = usecases.plan(usecases.PlanRequest(project, branch, "abc", environ={}))
    if again:
        the_plan = usecases.plan(
            usecases.PlanRequest(project, branch, "abc", environ={}, facts=live_after(the_plan))
        )
    cli_output.report(usecases.Outcome(the_plan, ()))
    assert capsys.readouterr().out == line
