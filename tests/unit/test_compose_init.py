"""init's decisions, pure: Compose services in, config and report out (no docker here;
tests/tools/test_init.py runs the real loader on the fixtures)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from swarm_deploy import cli, commands, compose_init
from swarm_deploy.compose_init import (
    Build,
    ComposeService,
    InitOptions,
    adopt,
    app_name,
    config_name,
    data_kind,
    http_check,
    is_credential_name,
    parse,
)

OPTIONS = InitOptions(
    directory="shop", app="shop", domain="shop.example.com", registry="ghcr.io/acme"
)


def test_the_loader_is_docker_stack_config_without_interpolation() -> None:
    assert commands.compose_config("compose.yaml") == [
        "docker", "stack", "config", "--compose-file", "compose.yaml", "--skip-interpolation",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("test", "expected"),
    [
        (("CMD", "curl", "-f", "http://localhost:8000/health"), ("/health", 8000)),
        (
            ("CMD-SHELL", "curl -fsS http://127.0.0.1:8080/api/health || exit 1"),
            ("/api/health", 8080),
        ),
        (("CMD", "wget", "-qO-", "http://0.0.0.0/ready"), ("/ready", None)),
        (("CMD", "/usr/bin/curl", "http://localhost:3000"), ("/", 3000)),
        (("CMD", "curl", "-f", "http://db:8000/health"), None),
        (("CMD", "pg_isready"), None),
        (("CMD-SHELL", "python -c 'import urllib; ...http://localhost:8000/'"), None),
    ],
)
def test_an_http_healthcheck_gives_its_path_and_port(
    test: tuple[str, ...], expected: tuple[str, int | None] | None
) -> None:
    assert http_check(test) == expected


@pytest.mark.parametrize(
    ("image", "kind"),
    [
        ("postgres:16.4-bookworm", "postgres"),
        ("docker.io/library/postgres@sha256:abc", "postgres"),
        ("bitnami/postgresql:16", "postgres"),
        ("redis:7", "redis"),
        ("mongo:7.0.14", "mongo"),
        ("mysql:8.4", "mysql"),
        ("mariadb:11", "mariadb"),
        ("nginx:1.27", None),
        (None, None),
    ],
)
def test_data_services_are_recognised_by_image(image: str | None, kind: str | None) -> None:
    assert data_kind(image) == kind


@pytest.mark.parametrize(
    ("name", "credential"),
    [
        ("DB_PASSWORD", True),
        ("SECRET_KEY", True),
        ("GITHUB_TOKEN", True),
        ("API_KEY", True),
        ("KEYBOARD_LAYOUT", False),
        ("TOKENIZER", False),
        ("app-secret", True),
        ("LOG_LEVEL", False),
    ],
)
def test_credentials_are_told_by_the_words_of_their_name(name: str, credential: bool) -> None:
    assert is_credential_name(name) is credential


def test_names_become_config_names() -> None:
    assert config_name("web-api") == "web_api"
    assert config_name("2nd") == "s_2nd"
    assert app_name("My-Shop.v2") == "myshopv2"
    assert app_name("42") == "app"


def web(**changes: object) -> ComposeService:
    fields: dict[str, object] = {"name": "web", "build": Build("."), "ports": ((8000, 8000),)}
    return ComposeService(**(fields | changes))  # type: ignore[arg-type]


def test_a_url_with_a_password_or_a_reference_to_one_becomes_a_secret_by_name() -> None:
    adopted = adopt(
        [
            web(
                environment={
                    "BROKER": "amqp://u:pw-literal@mq.example.com/",
                    "CACHE": "${CACHE_URL}",
                }
            )
        ],
        {},
        InitOptions(**(OPTIONS.__dict__ | {"env_file": {"CACHE_URL": "redis://:pw-env@x:1/"}})),
    )
    assert adopted.config["services"]["web"]["secrets"] == ["broker", "cache"]
    assert adopted.config["services"]["web"]["env"] == {
        "BROKER_FILE": "/run/secrets/broker",
        "CACHE_FILE": "/run/secrets/cache",
    }
    assert adopted.config["secrets"] == {"broker": {"env": "BROKER"}, "cache": {"env": "CACHE_URL"}}
    assert "pw-literal" not in str(adopted)
    assert "pw-env" not in str(adopted)


def test_two_routed_services_share_the_edge_by_path_and_health_follows_the_prefix() -> None:
    api = ComposeService(
        name="api", build=Build("./api"), ports=((9000, 9000),),
        healthcheck=("CMD", "curl", "http://localhost:9000/health"),
    )  # fmt: skip
    adopted = adopt([api, web()], {}, OPTIONS)
    services = adopted.config["services"]
    assert services["web"] == {"image": "web", "port": 8000, "path": "/", "health": "/"}
    assert services["api"] == {
        "image": "api",
        "port": 9000,
        "path": "/api/",
        "health": "/api/health",
    }
    assert "api: nginx passes the path on unchanged: the service sees requests under /api/" in (
        adopted.report
    )


def test_mysql_and_public_images_are_reported_not_mapped() -> None:
    adopted = adopt(
        [web(), ComposeService(name="db", image="mysql:8.4"),
         ComposeService(name="mail", image="axllent/mailpit")],
        {}, OPTIONS,
    )  # fmt: skip
    assert "shared" not in adopted.config
    assert sorted(adopted.config["services"]) == ["web"]
    assert adopted.report[:2] == [
        "db: mysql:8.4 is mysql: not supported yet (shared data services are PostgreSQL, Redis "
        "and MongoDB); not carried, and its users keep their settings for it",
        "mail: runs the public image axllent/mailpit with no build: not carried (swarm-deploy "
        "builds every colour service's image); add its build, or run it outside swarm-deploy",
    ]


def test_the_loaders_output_is_read_into_services() -> None:
    text = """version: "3.13"
services:
  web:
    build: {context: ./app, args: {A: "1"}}
    command: [python3, app.py]
    expose: ["5000"]
    ports: [{mode: ingress, target: 8000, published: 8000, protocol: tcp}]
    env_file: [.env]
    environment: {X: "1", Y: null}
    volumes: [{type: bind, source: /tmp, target: /data}]
    deploy: {replicas: 2, resources: {limits: {memory: 64M}}}
"""
    assert parse(text, "compose.yaml") == [
        ComposeService(
            name="web", build=Build("./app", args={"A": "1"}), ports=((8000, 8000),),
            expose=(5000,), environment={"X": "1", "Y": None}, env_files=(".env",),
            command=("python3", "app.py"), replicas=2,
            other_keys=("deploy.resources", "volumes"),
        )
    ]  # fmt: skip


def test_init_refuses_to_overwrite_a_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    (tmp_path / "swarm-deploy.yml").write_text("app: mine\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli.main, ["init"])
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {tmp_path / 'swarm-deploy.yml'}: exists already; pass --force to overwrite it, "
        "or --print to see what init would write\n"
    )
    assert (tmp_path / "swarm-deploy.yml").read_text() == "app: mine\n"


def test_init_without_a_compose_file_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli.main, ["init"])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: --from: no Compose file here (compose.yaml, compose.yml, docker-compose.yaml, "
        "docker-compose.yml looked for); run init in the app's directory or pass --from PATH\n"
    )


def test_a_host_setting_of_a_data_service_is_rewired_and_a_mere_word_is_not() -> None:
    redis = ComposeService(name="redis", image="redis:7")
    adopted = adopt(
        [redis, web(environment={"CACHE_BACKEND": "redis", "REDIS_ADDR": "redis:6379"})],
        {},
        OPTIONS,
    )
    assert adopted.config["services"]["web"]["uses"] == ["redis"]
    assert adopted.config["services"]["web"]["env"] == {"CACHE_BACKEND": "redis"}
    assert (
        "web: REDIS_ADDR pointed at the Compose redis -> not carried; `uses: [redis]` gives the "
        "service REDIS_URL, REDIS_USER, REDIS_PREFIX, REDIS_PASSWORD_FILE, the branch's relay "
        "and its own user: build REDIS_ADDR from them"
    ) in adopted.report


def test_init_names_its_own_option_for_an_env_file_it_cannot_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli.main, ["init", "--env-file", "missing.env"])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: --env-file: cannot read missing.env (No such file or directory)\n"
    )


def test_a_credential_never_takes_a_name_swarm_deploy_gives_its_own_secrets() -> None:
    adopted = adopt(
        [web(environment={"PG_PASSWORD": "${PG_PASSWORD}", "PG-PASSWORD": "${OTHER}"})],
        {},
        OPTIONS,
    )
    assert adopted.config["secrets"] == {
        "pg_password_2": {"env": "OTHER"},
        "pg_password_3": {"env": "PG_PASSWORD"},
    }


def test_behind_the_apps_own_proxy_the_services_exposing_a_port_are_routed() -> None:
    proxy = ComposeService(name="proxy", image="nginx:1.27", ports=((80, 80),))
    app = ComposeService(name="app", build=Build("."), expose=(5000,))
    worker = ComposeService(name="worker", build=Build("."), command=("work",))
    adopted = adopt([app, proxy, worker], {}, OPTIONS)
    assert adopted.config["services"] == {
        "app": {"image": "app", "port": 5000, "path": "/", "health": "/"},
        "worker": {"image": "app", "command": ["work"]},
    }
    assert adopted.report[0] == (
        "proxy: nginx:1.27 is the app's own reverse proxy: not carried; each branch's nginx "
        "routes to the services behind it (app)"
    )


def test_what_is_not_carried_is_named_never_shown() -> None:
    adopted = adopt(
        [web(
            environment={"LABEL": "lit-Xy7-${STAGE}", "NOTHING": None},
            healthcheck=("CMD", "redis-cli", "-a", "hc-pw-Qq3", "ping"),
        )],
        {}, OPTIONS,
    )  # fmt: skip
    assert [line for line in adopted.report if line.startswith("web: ") and "carried" in line] == [
        "web: its healthcheck is not an HTTP check by curl or wget of localhost: not carried "
        "(the gate checks the service's health path instead)",
        "web: LABEL takes its value from the environment ($STAGE): not carried; set "
        "services/web/env/LABEL",
        "web: NOTHING takes its value from the environment (no value in the Compose file): not "
        "carried; set services/web/env/NOTHING",
    ]
    assert "lit-Xy7" not in str(adopted)
    assert "hc-pw-Qq3" not in str(adopted)


def test_next_steps_name_the_env_file_init_read_and_the_vm() -> None:
    assert compose_init.next_steps(None) == (
        "next steps:\n"
        "  swarm-deploy check\n"
        "  swarm-deploy doctor --host ssh://USER@VM\n"
        "  swarm-deploy plan --branch develop --host ssh://USER@VM\n"
        "  swarm-deploy deploy --branch develop --host ssh://USER@VM\n"
        "(or set `target: ssh://USER@VM` in swarm-deploy.yml and leave out --host)\n"
        "(each secret's variable set in the environment, or --secrets-env-file FILE)"
    )
    assert (
        "  swarm-deploy plan --branch develop --host ssh://USER@VM --secrets-env-file app/.env\n"
        in (compose_init.next_steps("app/.env"))
    )
