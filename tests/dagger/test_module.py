"""The Dagger module, registered and called through the SDK's own machinery, offline.

A broken signature, an argument without a description or a type the SDK cannot
register fails here, as it would fail `dagger call` for a user.
"""

from __future__ import annotations

import json
import re
import tomllib
from typing import Any

import anyio
import pytest
import yaml
from dagger import dag

from swarm_deploy import cli, pipeline
from swarm_deploy.main import SwarmDeploy
from tests.conftest import EXAMPLE_CONFIG, ROOT
from tests.dagger.conftest import SOURCE_ID, OfflineEngine, query

MODULE = SwarmDeploy.__dagger_module__


def registration(engine: OfflineEngine) -> list[dict[str, Any]]:
    assert anyio.run(MODULE._typedefs) is not None
    return engine.sent[-1]


def select(sent: list[dict[str, Any]], field: str) -> list[dict[str, Any]]:
    return [step for step in sent if step["field"] == field]


def functions(engine: OfflineEngine) -> dict[str, list[dict[str, Any]]]:
    (module_object,) = select(registration(engine), "withObject")
    object_def = module_object["args"]["object"]
    found = {}
    for step in select(object_def, "withFunction") + select(object_def, "withConstructor"):
        function_query = step["args"]["function"]
        found[function_query[0]["args"]["name"]] = function_query
    return found


def test_every_function_and_argument_is_registered_with_a_description(
    engine: OfflineEngine,
) -> None:
    registered = functions(engine)
    assert set(registered) == {
        "",  # the constructor
        "plan", "render", "build", "publish", "deploy", "rollback", "destroy", "status",
        "unit_tests",
    }  # fmt: skip
    for name, function_query in registered.items():
        if name:
            (description,) = select(function_query, "withDescription")
            text = description["args"]["description"]
            assert text, f"{name} has no docstring"
            assert "\n" not in text, f"{name}: the docstring should be one line"
        for arg in select(function_query, "withArg"):
            assert arg["args"]["description"], f"{name}({arg['args']['name']}) has no Doc"


def test_the_source_directory_defaults_to_the_project_without_caches(engine: OfflineEngine) -> None:
    args = {arg["args"]["name"]: arg for arg in select(functions(engine)[""], "withArg")}
    source = args["source"]
    assert args["config_path"]["args"]["defaultValue"] == '"swarm-deploy.yml"'
    assert source["args"]["defaultPath"] == "/"
    assert ".git" in source["args"]["ignore"]
    assert "**/__pycache__" in source["args"]["ignore"]


def test_plan_through_get_result_matches_the_cli_plan(engine: OfflineEngine) -> None:
    text = anyio.run(
        MODULE.get_result,
        "SwarmDeploy",
        {"source": SOURCE_ID},
        "plan",
        {"branch": "feature/JIRA-123_add-login", "release": "abc"},
    )
    assert text.startswith("Plan: deploy gaia branch 'feature/JIRA-123_add-login'")
    assert "$ docker build --platform linux/amd64" in text
    assert "warning: secret session_key" in text  # a plan in Dagger sees no secret values


def test_render_returns_a_directory_of_the_rendered_files(engine: OfflineEngine) -> None:
    async def call() -> Any:
        result, _ = await MODULE.get_structured_result(
            "SwarmDeploy", {"source": SOURCE_ID}, "render", {"branch": "develop", "release": "abc"}
        )
        return result

    directory = anyio.run(call)
    files = {
        step["args"]["path"]: step["args"]["contents"]
        for step in select(query(directory._ctx), "withNewFile")
    }
    expected, _ = pipeline.render(
        pipeline.Project.load(EXAMPLE_CONFIG), "develop", "abc", environ={}
    )
    assert files == expected
    assert yaml.safe_load(files["stacks/edge.yml"])["services"]["nginx"]


SENTINEL = "sentinel-registry-token-0f1e2d"


def call(engine: OfflineEngine, name: str, inputs: dict[str, Any]) -> Any:
    async def run() -> Any:
        result, _ = await MODULE.get_structured_result(
            "SwarmDeploy", {"source": SOURCE_ID}, name, inputs
        )
        return result

    return anyio.run(run)


def secret_id(engine: OfflineEngine, value: str) -> str:
    """A secret made the way the Dagger CLI makes one, and its ID: the only way in."""
    return anyio.run(dag.set_secret("registry-token", value).id)


def test_actions_are_never_cached_and_unit_tests_are_a_check(engine: OfflineEngine) -> None:
    registered = functions(engine)
    for name in ("publish", "deploy", "rollback", "destroy", "status"):
        (policy,) = select(registered[name], "withCachePolicy")
        assert policy["args"]["policy"] == "Never", name
    for name in ("plan", "render", "build"):
        assert not select(registered[name], "withCachePolicy"), name
    assert select(registered["unit_tests"], "withCheck")


def test_build_asks_the_engine_for_linux_amd64_images(engine: OfflineEngine) -> None:
    images = call(engine, "build", {"release": "abc"})
    assert len(images) == 3
    for image in images:
        sent = query(image._ctx)
        (build,) = select(sent, "dockerBuild")
        assert build["args"]["platform"] == "linux/amd64"
        assert build["args"].get("dockerfile", "Dockerfile") == "Dockerfile"  # the default
        (label,) = select(sent, "withLabel")
        assert label["args"] == {"name": "org.opencontainers.image.revision", "value": "abc"}
    contexts = [select(query(i._ctx), "directory")[0]["args"]["path"] for i in images]
    assert contexts == ["examples/gaia/backend", "examples/gaia/frontend", "examples/gaia/bot"]


def test_deploy_runs_the_cli_in_a_deployer_with_secrets_mounted_by_id(
    engine: OfflineEngine,
) -> None:
    token = secret_id(engine, SENTINEL)
    output = call(engine, "deploy", {
        "branch": "develop", "release": "abc", "host": "ssh://deploy@vm1",
        "ssh_key": "ssh-key-secret-id", "known_hosts": "known-hosts-secret-id",
        "registry_user": "acme", "registry_token": token,
        "app_secrets": "app-secrets-secret-id",
    })  # fmt: skip
    assert output == "offline stdout\n"
    publishes = [s for s in engine.sent if s[-1]["field"] == "publish"]
    assert [p[-1]["args"]["address"] for p in publishes] == [
        "ghcr.io/acme/gaia-backend:abc", "ghcr.io/acme/gaia-backend:develop",
        "ghcr.io/acme/gaia-frontend:abc", "ghcr.io/acme/gaia-frontend:develop",
        "ghcr.io/acme/gaia-bot:abc", "ghcr.io/acme/gaia-bot:develop",
    ]  # fmt: skip
    for sent in publishes:
        (auth,) = select(sent, "withRegistryAuth")
        assert auth["args"]["address"] == "ghcr.io"
        assert auth["args"]["secret"] == [{"type": "Query", "field": "node", "args": {"id": token}}]
    (deployer,) = [s for s in engine.sent if s[-1]["field"] == "stdout"]
    mounted = {
        m["args"]["path"]: m["args"]["source"] for m in select(deployer, "withMountedSecret")
    }
    assert set(mounted) == {
        "/root/.ssh/known_hosts", "/root/.ssh/id_deploy", "/run/swarm-deploy/app-secrets.env"
    }  # fmt: skip
    assert mounted["/root/.ssh/id_deploy"] == [
        {"type": "Query", "field": "node", "args": {"id": "ssh-key-secret-id"}}
    ]
    (variable,) = select(deployer, "withSecretVariable")
    assert variable["args"]["name"] == "SWARM_DEPLOY_REGISTRY_TOKEN"
    (run,) = [s for s in select(deployer, "withExec") if "swarm-deploy" in s["args"]["args"]]
    argv = run["args"]["args"]
    tail = argv[argv.index("swarm-deploy") :]
    assert tail[:6] == ["swarm-deploy", "deploy", "--branch", "develop", "--release", "abc"]
    assert f"backend=ghcr.io/acme/gaia-backend@sha256:{'ab' * 32}" in tail
    assert tail[-4:] == ["--config", "swarm-deploy.yml", "--host", "ssh://deploy@vm1"]
    # the secret's value was in the one query that made the secret, and nowhere else
    carrying = [s for s in engine.sent if SENTINEL in json.dumps(s)]
    assert len(carrying) == 1
    assert carrying[0][0]["field"] == "setSecret"


def test_the_deployer_installs_this_package_and_runs_its_command(engine: OfflineEngine) -> None:
    scripts = tomllib.loads((ROOT / "dagger" / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"swarm-deploy": "swarm_deploy.cli:main"}  # what the engine tests run
    call(engine, "status", {"host": "local"})
    (deployer,) = [s for s in engine.sent if s[-1]["field"] == "stdout"]
    (source,) = [
        d for d in select(deployer, "withDirectory") if d["args"]["path"] == "/opt/swarm-deploy"
    ]
    assert source["args"]["exclude"] == ["sdk"]
    installs = [
        e["args"]["args"] for e in select(deployer, "withExec") if "pip" in e["args"]["args"]
    ]
    assert installs == [[
        "pip", "install", "--quiet", "--break-system-packages",
        "-c", "/opt/swarm-deploy/constraints.txt", "/opt/swarm-deploy",
    ]]  # fmt: skip


def test_the_deployer_runs_arguments_the_cli_accepts(engine: OfflineEngine) -> None:
    call(engine, "deploy", {
        "branch": "develop", "release": "abc", "host": "local",
        "app_secrets": "app-secrets-secret-id",
    })  # fmt: skip
    (deployer,) = [s for s in engine.sent if s[-1]["field"] == "stdout"]
    (run,) = [s for s in select(deployer, "withExec") if "swarm-deploy" in s["args"]["args"]]
    argv = run["args"]["args"]
    args = argv[argv.index("swarm-deploy") + 1 :]
    context = cli.main.make_context("swarm-deploy", list(args))
    sub = cli.main.get_command(context, args[0])
    assert sub is not None
    parsed = sub.make_context(args[0], list(args[1:]), parent=context)
    assert parsed.params["branch"] == "develop"
    assert len(parsed.params["images"]) == 3


def test_an_ssh_host_needs_known_hosts(engine: OfflineEngine) -> None:
    with pytest.raises(Exception, match="--known-hosts is required"):
        call(engine, "status", {"host": "ssh://deploy@vm1", "ssh_key": "key-id"})


def test_a_dry_run_deploy_returns_the_plan(engine: OfflineEngine) -> None:
    text = call(engine, "deploy", {"branch": "develop", "dry_run": True})
    assert text.startswith("Plan: deploy gaia branch 'develop'")
    assert not [s for s in engine.sent if s[-1]["field"] in ("publish", "stdout")]


def test_without_a_release_the_contexts_content_names_it(engine: OfflineEngine) -> None:
    """The source has no .git: the release was `dev` whatever the code, so a changed app
    was "already at dev, nothing to do"."""
    first = json.loads(call(engine, "plan", {"branch": "develop", "json_output": True}))
    asked = [s[-2]["args"]["path"] for s in engine.sent if s[-1]["field"] == "digest"]
    assert sorted(asked) == ["examples/gaia/backend", "examples/gaia/bot", "examples/gaia/frontend"]
    assert re.fullmatch(r"dev-[0-9a-f]{12}", first["release"])
    again = json.loads(call(engine, "plan", {"branch": "develop", "json_output": True}))
    assert again["release"] == first["release"]
    engine.digests["examples/gaia/bot"] = "sha256:" + "0" * 64  # the bot's code changed
    changed = json.loads(call(engine, "plan", {"branch": "develop", "json_output": True}))
    assert changed["release"] != first["release"]
    assert changed["images"]["bot"] == f"ghcr.io/acme/gaia-bot:{changed['release']}"
