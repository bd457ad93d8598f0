"""The Dagger module, registered and called through the SDK's own machinery, offline.

A broken signature, an argument without a description or a type the SDK cannot
register fails here, as it would fail `dagger call` for a user.
"""

from __future__ import annotations

import json
import re
import shutil
import tomllib
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml
from bench.testbed import copy_project
from dagger import DaggerError, dag

from swarm_deploy import cli, config, pipeline, template_files
from swarm_deploy import deployer_container as container
from swarm_deploy.main import SwarmDeploy
from tests.conftest import EXAMPLE_CONFIG, ROOT
from tests.dagger import conftest as offline
from tests.dagger.conftest import FUNCTIONS, SOURCE_ID, OfflineEngine, query

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
    assert set(registered) == FUNCTIONS
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


def test_render_takes_the_templates_the_source_overrides_and_the_package_s_others(
    engine: OfflineEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A source of only its app, swarm-deploy.yml and nginx/nginx.conf."""
    copy_project(ROOT, tmp_path)
    shutil.copy(EXAMPLE_CONFIG, tmp_path / "swarm-deploy.yml")
    (tmp_path / "nginx").mkdir()
    nginx = template_files.packaged("nginx/nginx.conf").replace("server_tokens off;", "#mine;")
    (tmp_path / "nginx" / "nginx.conf").write_text(nginx)
    monkeypatch.setattr(offline, "ROOT", tmp_path)

    async def call() -> Any:
        result, _ = await MODULE.get_structured_result(
            "SwarmDeploy", {"source": SOURCE_ID}, "render", {"branch": "develop", "release": "abc"}
        )
        return result

    files = {
        step["args"]["path"]: step["args"]["contents"]
        for step in select(query(anyio.run(call)._ctx), "withNewFile")
    }
    project = pipeline.Project.load(tmp_path / "swarm-deploy.yml")
    assert project.overrides == {"nginx/nginx.conf": nginx}
    assert files == pipeline.render(project, "develop", "abc", environ={})[0]
    assert "#mine;" in files["nginx/nginx.conf"]


def test_plan_of_another_repository_with_only_its_app_and_config(
    engine: OfflineEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`dagger -m <this repository> call --source . plan`: a Compose app after `init`,
    no template and no swarm-deploy of its own; its deployer installs this module."""
    shutil.copytree(ROOT / "tests/fixtures/compose/web-postgres/app", tmp_path / "app")
    shutil.copy(
        ROOT / "tests/fixtures/compose/web-postgres/expected.swarm-deploy.yml",
        tmp_path / "swarm-deploy.yml",
    )
    monkeypatch.setattr(offline, "ROOT", tmp_path)
    text = call(engine, "plan", {"branch": "develop", "release": "abc"})
    assert text.startswith("Plan: deploy webpostgres branch 'develop'"), text
    call(engine, "status", SSH)
    package = select(the_deployer(engine), "withDirectory")[0]["args"]
    assert package["path"] == "/opt/swarm-deploy"
    assert package["source"] == [
        {"type": "Query", "field": "currentModule", "args": {}},
        {"type": "CurrentModule", "field": "source", "args": {}},
    ]


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
    for name in ("publish", "deploy", "rollback", "destroy", "status", "doctor", "plan_on_target"):
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


# one line per `env:` source of the example config's secrets, as the workflow builds them
APP_SECRETS = "".join(
    f"{source.env}=value-of-{name}\n"
    for name, source in config.load(EXAMPLE_CONFIG).secrets.items()
    if source.env
)
SSH = {"host": "ssh://deploy@vm1", "ssh_key": "ssh-key-secret-id", "known_hosts": "known-hosts-id"}


@pytest.fixture
def plaintexts(engine: OfflineEngine, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Secret values by ID, for the `plaintext` a function reads to check them first."""
    values = {"app-secrets-secret-id": APP_SECRETS}
    answer = engine.execute

    async def execute(ctx: Any, return_type: Any = None) -> Any:
        sent = query(ctx)
        if sent[-1]["field"] == "plaintext":
            return values[sent[0]["args"]["id"]]
        return await answer(ctx, return_type)

    monkeypatch.setattr(engine, "execute", execute)
    return values


def the_deployer(engine: OfflineEngine) -> list[dict[str, Any]]:
    (deployer,) = [s for s in engine.sent if s[-1]["field"] == "stdout"]
    return deployer


def command_argv(deployer: list[dict[str, Any]]) -> list[str]:
    """What the deployer container runs, from `swarm-deploy` on."""
    (run,) = [s for s in select(deployer, "withExec") if "swarm-deploy" in s["args"]["args"]]
    argv: list[str] = run["args"]["args"]
    return argv[argv.index("swarm-deploy") :]


def test_deploy_runs_the_cli_in_a_deployer_with_secrets_mounted_by_id(
    engine: OfflineEngine, plaintexts: dict[str, str]
) -> None:
    token = secret_id(engine, SENTINEL)
    output = call(engine, "deploy", {
        "branch": "develop", "release": "abc", **SSH,
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
    deployer = the_deployer(engine)
    mounted = {
        m["args"]["path"]: m["args"]["source"] for m in select(deployer, "withMountedSecret")
    }
    assert set(mounted) == {
        "/root/.ssh/known_hosts", "/run/swarm-deploy/ssh-key", "/run/swarm-deploy/app-secrets.env"
    }  # fmt: skip
    assert mounted["/run/swarm-deploy/ssh-key"] == [
        {"type": "Query", "field": "node", "args": {"id": "ssh-key-secret-id"}}
    ]
    (variable,) = select(deployer, "withSecretVariable")
    assert variable["args"]["name"] == "SWARM_DEPLOY_REGISTRY_TOKEN"
    tail = command_argv(deployer)
    assert tail[:6] == ["swarm-deploy", "deploy", "--branch", "develop", "--release", "abc"]
    assert f"backend=ghcr.io/acme/gaia-backend@sha256:{'ab' * 32}" in tail
    assert tail[-4:] == ["--config", "swarm-deploy.yml", "--host", "ssh://deploy@vm1"]
    # the secret's value was in the one query that made the secret, and nowhere else
    carrying = [s for s in engine.sent if SENTINEL in json.dumps(s)]
    assert len(carrying) == 1
    assert carrying[0][0]["field"] == "setSecret"
    assert not [s for s in engine.sent if "value-of-session_key" in json.dumps(s)]


def test_the_deployer_is_python_slim_with_openssh_and_the_static_docker_cli(
    engine: OfflineEngine,
) -> None:
    """Built from images a laptop and a mirror of Docker Hub both have: no apk, no Alpine."""
    scripts = tomllib.loads((ROOT / "dagger" / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"swarm-deploy": "swarm_deploy.cli:main"}  # what the engine tests run
    call(engine, "status", SSH)
    source = [{"type": "Query", "field": "node", "args": {"id": SOURCE_ID}}]
    assert the_deployer(engine)[:13] == [
        {"type": "Query", "field": "container", "args": {}},
        {"type": "Container", "field": "from", "args": {"address": "python:3.11-slim-bookworm"}},
        {"type": "Container", "field": "withExec", "args": {"args": ["apt-get", "update", "-qq"]}},
        {"type": "Container", "field": "withExec", "args": {"args": [
            "apt-get", "install", "-qq", "-y", "--no-install-recommends", "openssh-client",
        ]}},
        {"type": "Container", "field": "withFile", "args": {
            "path": "/usr/local/bin/docker",
            "source": [
                {"type": "Query", "field": "container", "args": {}},
                {"type": "Container", "field": "from", "args": {"address": "docker:28.2.2-cli"}},
                {"type": "Container", "field": "file", "args": {"path": "/usr/local/bin/docker"}},
            ],
        }},
        {"type": "Container", "field": "withDirectory", "args": {
            "path": "/opt/swarm-deploy",
            "source": [{"type": "Query", "field": "currentModule", "args": {}},
                       {"type": "CurrentModule", "field": "source", "args": {}}],
            "exclude": ["sdk"],
        }},
        {"type": "Container", "field": "withExec", "args": {"args": [
            "pip", "install", "--quiet", "--no-cache-dir",
            "-c", "/opt/swarm-deploy/constraints.txt", "/opt/swarm-deploy",
        ]}},
        {"type": "Container", "field": "withDirectory",
         "args": {"path": "/work", "source": source}},
        {"type": "Container", "field": "withWorkdir", "args": {"path": "/work"}},
        {"type": "Container", "field": "withNewFile", "args": {
            "path": "/root/.ssh/config", "contents": container.SSH_CLIENT_CONFIG,
        }},
        {"type": "Container", "field": "withMountedTemp",
         "args": {"path": "/run/swarm-deploy/private"}},
        {"type": "Container", "field": "withEnvVariable",
         "args": {"name": "DOCKER_CONFIG", "value": "/run/swarm-deploy/private/docker"}},
        {"type": "Container", "field": "withMountedSecret", "args": {
            "path": "/root/.ssh/known_hosts",
            "source": [{"type": "Query", "field": "node", "args": {"id": "known-hosts-id"}}],
        }},
    ]  # fmt: skip
    assert "IdentityFile /run/swarm-deploy/private/id_deploy\n" in container.SSH_CLIENT_CONFIG
    (run,) = select(the_deployer(engine), "withExec")[-1:]
    assert run["args"]["args"] == [
        "python", "-m", "swarm_deploy.deployer_container", "ghcr.io",
        "swarm-deploy", "status", "--json", "--config", "swarm-deploy.yml",
        "--host", "ssh://deploy@vm1",
    ]  # fmt: skip


def test_plan_on_target_runs_plan_read_target_and_returns_its_warnings_too(
    engine: OfflineEngine,
) -> None:
    """The plan's warnings (the certificates' among them) are on the CLI's stderr."""
    text = call(engine, "plan_on_target", {**SSH, "branch": "develop", "release": "abc"})
    assert text == "offline stdout\noffline stderr\n"
    assert command_argv(the_deployer(engine)) == [
        "swarm-deploy", "plan", "--branch", "develop", "--release", "abc", "--read-target",
        "--config", "swarm-deploy.yml", "--host", "ssh://deploy@vm1",
    ]  # fmt: skip
    as_json = call(engine, "plan_on_target", {**SSH, "branch": "develop", "json_output": True})
    assert as_json == "offline stdout\n"


@pytest.mark.parametrize(
    ("function", "inputs"),
    [
        (
            "deploy",
            {
                "branch": "develop",
                "release": "abc",
                "app_secrets": "app-secrets-secret-id",
                "update_shared": True,
            },
        ),
        (
            "rollback",
            {"branch": "develop", "app_secrets": "app-secrets-secret-id", "update_shared": True},
        ),
        ("destroy", {"branch": "feature/x", "drop_data": True}),
        ("unlock", {"branch": "feature/x"}),
        ("unlock", {"shared": True}),
        ("status", {}),
        ("doctor", {}),
        ("plan_on_target", {"branch": "develop", "release": "abc"}),
    ],
)
def test_the_deployer_runs_arguments_the_cli_accepts(
    engine: OfflineEngine, plaintexts: dict[str, str], function: str, inputs: dict[str, Any]
) -> None:
    """Every command the deployer runs parses, with what crossed the container boundary:
    the app secrets' file, the lock, who runs it."""
    waits = function not in ("status", "doctor", "unlock", "plan_on_target")
    call(engine, function, {**SSH, **inputs, **({"lock_wait": 30} if waits else {})})
    args = command_argv(the_deployer(engine))[1:]
    context = cli.main.make_context("swarm-deploy", list(args))
    sub = cli.main.get_command(context, args[0])
    assert sub is not None
    parsed = sub.make_context(args[0], list(args[1:]), parent=context)
    assert parsed.params["target"] == "ssh://deploy@vm1"
    if function == "unlock":
        assert (parsed.params["branch"], parsed.params["shared"]) == (
            inputs.get("branch"),
            inputs.get("shared", False),
        )
    if not waits:
        return
    assert parsed.params["actor"] == "unknown (dagger call without --actor)"
    assert parsed.params["lock_wait"] == 30
    if "app_secrets" in inputs:
        assert parsed.params["secrets_env_file"] == Path("/run/swarm-deploy/app-secrets.env")
    if "update_shared" in inputs:
        assert parsed.params["update_shared"] is True
    if function == "deploy":
        assert len(parsed.params["images"]) == 3


def test_who_deploys_crosses_into_the_deployer(
    engine: OfflineEngine, plaintexts: dict[str, str]
) -> None:
    who = "octocat (https://github.com/acme/gaia/actions/runs/4242)"
    call(engine, "deploy", {
        "branch": "develop", "release": "abc", **SSH,
        "app_secrets": "app-secrets-secret-id", "actor": who,
    })  # fmt: skip
    argv = command_argv(the_deployer(engine))
    assert argv[argv.index("--actor") + 1] == who


NEEDS_KEY = "a key: --ssh-key file://$HOME/.ssh/id_ed25519 (or --ssh-auth-sock $SSH_AUTH_SOCK)"
NEEDS_HOST_KEY = (
    "its host key: --known-hosts file://$HOME/.ssh/known_hosts (checked, never skipped)"
)
CONFIG_TARGET = "ssh://deploy@vm1.gaia.example.com"
DEPLOY = {"branch": "develop", "release": "abc", "app_secrets": "app-secrets-secret-id"}


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (
            {**DEPLOY, "host": "ssh://deploy@vm1", "ssh_key": "k"},
            f"--host: ssh://deploy@vm1 is reached over ssh, which needs {NEEDS_HOST_KEY}",
        ),
        (
            {**DEPLOY, "known_hosts": "kh"},
            f"target: {CONFIG_TARGET} is reached over ssh, which needs {NEEDS_KEY}",
        ),
        (
            DEPLOY,
            f"target: {CONFIG_TARGET} is reached over ssh, which needs {NEEDS_KEY}; "
            f"{NEEDS_HOST_KEY}",
        ),
        (
            {**DEPLOY, **SSH, "host": "local"},
            "--host: 'local' means the Docker engine of the machine that runs the command, "
            "and the deployer container has none; give --host ssh://user@host (or target: "
            "in the config), or run `swarm-deploy` on that machine itself",
        ),
        (
            {**DEPLOY, **SSH, "host": "vm1:22"},
            "--host: should be 'local' or ssh://user@host[:port], got 'vm1:22'",
        ),
        ({**DEPLOY, **SSH, "branch": "fix/typo"}, "branch 'fix/typo' matches no rule"),
        (
            {**DEPLOY, **SSH, "release": "v1 beta"},
            "--release: should be usable as an image tag (letters, digits, '_', '.', '-'), "
            "got 'v1 beta'",
        ),
        (
            {**DEPLOY, **SSH, "registry_token": "token-id"},
            "--registry-user: is empty, but --registry-token is given: name the token's "
            "user, e.g. the GitHub owner for ghcr.io",
        ),
        (
            {**DEPLOY, **SSH, "app_secrets": "partial-secrets-id"},
            "--app-secrets: 1 secret(s) cannot be read, so nothing was published or changed:\n"
            "  - secret 'session_key': GAIA_SESSION_KEY is not in it\n"
            "add a line VARIABLE=value for each, or change secrets: in the config",
        ),
        (
            {**DEPLOY, **SSH, "app_secrets": "not-key-value-id"},
            "--app-secrets line 2: should be KEY=VALUE (the line is not shown)",
        ),
    ],
)
def test_deploy_checks_every_argument_before_it_builds_or_publishes(
    engine: OfflineEngine, plaintexts: dict[str, str], inputs: dict[str, Any], message: str
) -> None:
    plaintexts["partial-secrets-id"] = "".join(
        line + "\n" for line in APP_SECRETS.splitlines() if "SESSION_KEY" not in line
    )
    plaintexts["not-key-value-id"] = "A=1\nsomething else\n"
    with pytest.raises(DaggerError, match=re.escape(message)):
        call(engine, "deploy", inputs)
    done = {step["field"] for sent in engine.sent for step in sent}
    assert not done & {"publish", "dockerBuild", "stdout"}, "nothing was built or run"


@pytest.mark.parametrize(
    ("function", "inputs"),
    [
        ("status", {}),
        ("doctor", {}),
        ("destroy", {"branch": "feature/x"}),
        ("rollback", {"branch": "develop"}),
    ],
)
def test_the_configs_target_is_checked_like_host(
    engine: OfflineEngine, function: str, inputs: dict[str, Any]
) -> None:
    """With no --host, the config's ssh:// target needs the host key all the same."""
    message = f"target: {CONFIG_TARGET} is reached over ssh, which needs {NEEDS_HOST_KEY}"
    with pytest.raises(DaggerError, match=re.escape(message)):
        call(engine, function, {**inputs, "ssh_key": "k"})
    assert not [s for s in engine.sent if s[-1]["field"] == "stdout"]


def test_a_protected_branch_is_destroyed_only_with_force(engine: OfflineEngine) -> None:
    with pytest.raises(DaggerError, match="branch 'main' is protected"):
        call(engine, "destroy", {"branch": "main", **SSH})
    assert not [s for s in engine.sent if s[-1]["field"] == "stdout"]
    call(engine, "destroy", {"branch": "main", "force": True, **SSH})
    assert "--force" in command_argv(the_deployer(engine))


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
