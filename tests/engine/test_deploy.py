"""Real deploys on the test bed's Swarm, through the `swarm-deploy` command.

The tests run in file order and build on each other the way a team's day goes:
develop and feature/x go live, develop moves to a new release over SSH, a secret is
rotated, a broken release is refused, feature/x is removed.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
import yaml
from docker.errors import ContainerError

from swarm_deploy import config as config_module
from swarm_deploy import facts, gate, stack_secrets
from tests.engine.conftest import APP, PORTS, Bed, Project, answers, drained, drains

POSTGRES_IMAGE = "127.0.0.1:5000/testbed/postgres:bookworm"
REDIS_IMAGE = "127.0.0.1:5000/testbed/redis:bookworm"


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def services(prefix: str) -> dict[str, Any]:
    client = docker.from_env()
    try:
        return {s.name: s.attrs for s in client.services.list() if s.name.startswith(prefix)}
    finally:
        client.close()


def secret_names() -> set[str]:
    client = docker.from_env()
    try:
        return {s.name for s in client.secrets.list(filters={"label": f"swarm-deploy.app={APP}"})}
    finally:
        client.close()


def psql(network: str, user: str, password: str, database: str, sql: str) -> str:
    """Runs psql in a throwaway container on the shared network; raises on failure."""
    client = docker.from_env()
    try:
        output: bytes = client.containers.run(
            POSTGRES_IMAGE,
            ["psql", "-h", f"{APP}-shared_postgres", "-U", user, "-d", database, "-tAc", sql],
            environment={"PGPASSWORD": password},
            network=network,
            remove=True,
            stderr=True,
        )
        return output.decode()
    finally:
        client.close()


def redis_cli(user: str, password: str, *command: str) -> str:
    """redis-cli as a Redis user, in a throwaway container on the shared network: its
    output, error replies included."""
    client = docker.from_env()
    try:
        container = client.containers.run(
            REDIS_IMAGE,
            ["redis-cli", "-h", f"{APP}-shared_redis", "--user", user, *command],
            environment={"REDISCLI_AUTH": password},
            network=f"{APP}-shared",
            detach=True,
        )
        try:
            container.wait(timeout=60)
            output: bytes = container.logs()
        finally:
            container.remove(force=True)
        return output.decode()
    finally:
        client.close()


def branch_password(project: Project, branch: str, key: str = "pg_password") -> str:
    cfg = config_module.load(project.config)
    secrets = stack_secrets.resolve(cfg, cfg.branch(branch), project.env)
    value = secrets.branch[key].value
    assert value is not None
    return value.reveal().decode()


def test_develop_and_feature_x_run_side_by_side(project: Project) -> None:
    output = ok(project.deploy("develop", "r1"))
    ok(project.deploy("feature/x", "r1"))
    develop = answers(PORTS["develop"]).json()
    feature = answers(PORTS["feature/x"]).json()
    assert (develop["branch"], develop["colour"], develop["version"]) == ("develop", "blue", "r1")
    assert (feature["branch"], feature["colour"], feature["version"]) == ("feature/x", "blue", "r1")
    assert develop["database"] == f"{APP}_develop_main"
    assert re.fullmatch(rf"{APP}_feature_x_[0-9a-f]{{6}}_main", feature["database"])
    assert develop["database_password_loaded"]
    assert feature["database_password_loaded"]
    assert re.search(
        r"^ok   \[ ?\d+/\d+\] build +build backend for linux/amd64  \d+\.\ds$", output, re.M
    )
    assert f"develop is live: blue, release r1, at http://127.0.0.1:{PORTS['develop']}" in output
    assert re.search(r"^ok   \[\d+/\d+\] migrate    migrate with backend's new image", output, re.M)


def test_images_are_deployed_by_digest_and_stateful_services_stop_first(project: Project) -> None:
    live = services(f"{APP}-develop-blue_")
    assert set(live) == {f"{APP}-develop-blue_{s}" for s in ("backend", "frontend", "bot")}
    for spec in live.values():
        image = spec["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
        assert re.fullmatch(r"127\.0\.0\.1:5000/acme/gaiat-\w+@sha256:[0-9a-f]{64}", image)
        assert spec["Spec"]["EndpointSpec"]["Mode"] == "dnsrr"
    postgres = services(f"{APP}-shared_postgres")[f"{APP}-shared_postgres"]
    assert postgres["Spec"]["UpdateConfig"]["Order"] == "stop-first"


def test_the_deploy_is_recorded_on_the_swarm(project: Project) -> None:
    edge = services(f"{APP}-develop-edge_nginx")[f"{APP}-develop-edge_nginx"]
    labels = edge["Spec"]["Labels"]
    assert labels["swarm-deploy.live-colour"] == "blue"
    assert labels["swarm-deploy.release"] == "r1"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", labels["swarm-deploy.deployed-at"])
    assert "@" in labels["swarm-deploy.deployed-by"]
    backend = services(f"{APP}-develop-blue_backend")[f"{APP}-develop-blue_backend"]
    image = backend["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    assert labels["swarm-deploy.image.backend"] == image
    client = docker.from_env()
    try:
        leftovers = client.containers.list(
            all=True, filters={"name": f"{APP}-develop-db"}, ignore_removed=True
        )
    finally:
        client.close()
    assert not leftovers, "the database job's containers are removed with it"


def test_the_edge_records_its_host_and_the_shared_stack_its_definitions(
    project: Project,
) -> None:
    labels = services(f"{APP}-develop-edge_nginx")[f"{APP}-develop-edge_nginx"]["Spec"]["Labels"]
    assert labels["swarm-deploy.host"] == "develop.gaia.localhost"
    assert labels["swarm-deploy.uses"] == "postgres,redis"
    for name, service in services(f"{APP}-shared_").items():
        definition = service["Spec"]["Labels"]["swarm-deploy.definition"]
        assert re.fullmatch(r"[0-9a-f]{12}", definition), name


def shared_variant(project: Project, name: str, change: Callable[[dict[str, Any]], None]) -> Path:
    data = yaml.safe_load(project.config.read_text())
    change(data)
    return project.write_config(name, {"shared": data["shared"], "services": data["services"]})


def test_a_branch_that_would_change_the_shared_stack_is_refused_before_any_change(
    project: Project,
) -> None:
    def bump(data: dict[str, Any]) -> None:
        data["shared"]["prometheus"]["image"] = "127.0.0.1:5000/testbed/prometheus:next"

    before = {name: s["Version"]["Index"] for name, s in services(f"{APP}-").items()}
    result = project.deploy("feature/bump", "b1", config=shared_variant(project, "bump.yml", bump))
    assert result.returncode == 2, result.stdout + result.stderr
    assert (
        f"{APP}-shared runs differently from what branch 'feature/bump' would deploy, and no "
        "branch rule may change it (shared: true):\n  prometheus: image "
        "127.0.0.1:5000/testbed/prometheus:bookworm -> 127.0.0.1:5000/testbed/prometheus:next\n"
    ) in result.stderr
    assert {name: s["Version"]["Index"] for name, s in services(f"{APP}-").items()} == before


def test_a_shared_service_a_branch_uses_is_never_removed(project: Project) -> None:
    def drop_redis(data: dict[str, Any]) -> None:
        del data["shared"]["redis"]
        for service in data["services"].values():
            service["uses"] = [kind for kind in service.get("uses", []) if kind != "redis"]

    variant = shared_variant(project, "no-redis.yml", drop_redis)
    result = project.deploy("develop", "r1", "--update-shared", "--force", config=variant)
    assert result.returncode == 2, result.stdout + result.stderr
    assert (
        f"this deploy would remove from {APP}-shared what other branches still use: redis by "
    ) in result.stderr
    assert "feature/x" in result.stderr.split("redis by ", 1)[1].split(";")[0]
    assert f"{APP}-shared_redis" in services(f"{APP}-shared_redis")


def test_the_singleton_runs_once(project: Project) -> None:
    bot = services(f"{APP}-develop-blue_bot")[f"{APP}-develop-blue_bot"]
    assert bot["Spec"]["Mode"]["Replicated"]["Replicas"] == 1


def test_the_same_release_again_changes_nothing(project: Project) -> None:
    before = {name: s["Version"]["Index"] for name, s in services(f"{APP}-").items()}
    output = ok(project.deploy("develop", "r1"))
    assert "develop is already at r1 (blue) on local: nothing to do" in output
    after = {name: s["Version"]["Index"] for name, s in services(f"{APP}-").items()}
    assert after == before


def test_a_branch_role_cannot_read_another_branch_database(project: Project) -> None:
    network = f"{APP}-shared"
    feature_role = answers(PORTS["feature/x"]).json()["database_user"]
    feature_db = answers(PORTS["feature/x"]).json()["database"]
    password = branch_password(project, "feature/x")
    assert psql(network, feature_role, password, feature_db, "select 1").strip() == "1"
    with pytest.raises(ContainerError) as refused:
        psql(network, feature_role, password, f"{APP}_develop_main", "select 1")
    assert b"permission denied for database" in (refused.value.stderr or b"")


def test_a_branch_redis_user_touches_its_own_keys_only(project: Project) -> None:
    # the app's own path: nginx -> backend -> the branch's relay -> Redis, as its user
    counts = [get_json(PORTS["develop"], "/api/visits")["visits"] for _ in range(2)]
    assert counts[1] == counts[0] + 1
    feature = answers(PORTS["feature/x"]).json()
    user, prefix = feature["redis_user"], feature["redis_prefix"]
    password = branch_password(project, "feature/x", "redis_password")
    assert redis_cli(user, password, "SET", f"{prefix}k", "v").strip() == "OK"
    assert "NOPERM" in redis_cli(user, password, "GET", f"{APP}:develop:visits")
    assert "NOPERM" in redis_cli(user, password, "FLUSHALL")
    assert "WRONGPASS" in redis_cli(user, "not-the-password", "PING")
    assert "NOAUTH" in redis_cli("default", "", "GET", f"{APP}:develop:visits")


def test_redis_users_survive_a_redis_restart(project: Project) -> None:
    feature = answers(PORTS["feature/x"]).json()
    password = branch_password(project, "feature/x", "redis_password")
    subprocess.run(["docker", "service", "update", "--force", "--quiet", f"{APP}-shared_redis"],
                   capture_output=True, check=True)  # fmt: skip
    assert (
        redis_cli(feature["redis_user"], password, "GET", f"{feature['redis_prefix']}k").strip()
        == "v"
    )
    assert get_json(PORTS["develop"], "/api/visits")["visits"] > 2


@contextmanager
def services_created(last: str) -> Iterator[list[str]]:
    """The services (one-shot jobs too) the Swarm creates while the block runs, by name,
    read live from its event stream (a later query would miss the early ones: the engine
    keeps its last 256 events only). `last`: one the block creates after all it watches."""
    client = docker.from_env()
    stream = client.events(filters={"type": "service", "event": "create"}, decode=True)
    names: list[str] = []

    def read() -> None:
        for event in stream:  # ends when the stream is closed
            names.append(event["Actor"]["Attributes"]["name"])

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield names
        for _ in range(100):
            if last in names:
                break
            time.sleep(0.1)
    finally:
        stream.close()
        reader.join(timeout=10)
        client.close()


def edge_labels(slug: str) -> dict[str, str]:
    labels: dict[str, str] = services(f"{APP}-{slug}-edge_nginx")[f"{APP}-{slug}-edge_nginx"][
        "Spec"
    ]["Labels"]
    return labels


def shared_versions() -> dict[str, int]:
    """Each shared service's version: any update (a `docker stack deploy`, even of the
    same file) raises it."""
    return {name: s["Version"]["Index"] for name, s in services(f"{APP}-shared_").items()}


def test_a_second_deploy_runs_no_data_job_and_leaves_the_shared_stack_alone(
    project: Project,
) -> None:
    """feature/skip's first deploy makes its role, databases and Redis user and records
    what it made on its edge; its second runs none of those jobs and deploys no shared
    stack (read from the Swarm's events and the shared services' versions). Once the
    shared Redis is removed and created again, the Redis job runs again, and only it."""
    branch = "feature/skip"
    slug = config_module.load(project.config).branch(branch).slug
    db_job, redis_job, migrate = (f"{APP}-{slug}-{kind}" for kind in ("db", "redis", "migrate"))
    with services_created(last=migrate) as created:
        ok(project.deploy(branch, "s1"))
    assert {db_job, redis_job, migrate} <= set(created)
    recorded = edge_labels(slug)
    assert re.fullmatch(r"[0-9a-f]{12}", recorded["swarm-deploy.data.postgres"])
    assert re.fullmatch(r"[0-9a-f]{12}", recorded["swarm-deploy.data.redis"])

    shared = shared_versions()
    with services_created(last=migrate) as created:
        output = ok(project.deploy(branch, "s2"))
    assert migrate in created, "the events are read: the migration job is there"
    assert db_job not in created
    assert redis_job not in created
    assert shared_versions() == shared, "no docker stack deploy of the shared stack"
    skipped = re.findall(r"^skip \[ ?\d+/\d+\] (\w+) +(.*)  unchanged, skipped$", output, re.M)
    assert [(phase, title.split(" ")[0]) for phase, title in skipped if phase != "secrets"] == [
        ("nginx", "test"),
        ("shared", "create"),
        ("shared", "create"),
        ("shared", "ensure"),
        ("databases", "ensure"),
        ("databases", "ensure"),
        ("edge", "deploy"),
        ("shared", "remove"),
    ]
    assert edge_labels(slug)["swarm-deploy.release"] == "s2"

    redis = f"{APP}-shared_redis"
    docker_cli("service", "rm", redis)
    client = docker.from_env()
    try:
        for _ in range(120):
            # sparse: no inspect of each, which fails for one removed meanwhile
            gone = not client.containers.list(
                all=True, filters={"label": f"com.docker.swarm.service.name={redis}"}, sparse=True
            )
            if gone:
                break
            time.sleep(0.5)
    finally:
        client.close()
    with services_created(last=migrate) as created:
        ok(project.deploy(branch, "s3", "--update-shared"))
    assert redis in created
    assert redis_job in created, "another Redis service: the branch's user is made again"
    assert db_job not in created
    labels = edge_labels(slug)
    assert labels["swarm-deploy.release"] == "s3"
    assert labels["swarm-deploy.data.postgres"] == recorded["swarm-deploy.data.postgres"]
    assert labels["swarm-deploy.data.redis"] != recorded["swarm-deploy.data.redis"]
    ok(project.cli("destroy", "--branch", branch, "--drop-data"))


def get_json(port: int, path: str) -> Any:
    response = answers(port, path)
    assert response.status_code == 200, response.text
    return response.json()


def task_ids(service_name: str) -> set[str]:
    client = docker.from_env()
    try:
        return {t["ID"] for t in client.api.tasks(filters={"service": service_name})}
    finally:
        client.close()


def test_deploy_over_ssh_switches_develop_to_green(project: Project, testbed: Bed) -> None:
    postgres_tasks = task_ids(f"{APP}-shared_postgres")
    output = ok(project.deploy("develop", "r2", "--host", testbed.ssh_target, drain=False))
    # the deploy returned once green was live: blue drains for edge.drain (6 s) after it
    assert services(f"{APP}-develop-blue_"), "the deploy returns before the old colour goes"
    assert drains() == [f"{APP}-develop-drain"]
    assert task_ids(f"{APP}-shared_postgres") == postgres_tasks, "unchanged: not restarted"
    assert "switch     switch develop.gaia.localhost to green" in output
    develop = answers(PORTS["develop"]).json()
    assert (develop["colour"], develop["version"]) == ("green", "r2")
    drained()
    assert not services(f"{APP}-develop-blue_"), "the drain job removes the old colour"
    feature = answers(PORTS["feature/x"]).json()
    assert (feature["colour"], feature["version"]) == ("blue", "r1"), "feature/x is untouched"


def test_a_rotated_secret_gets_a_new_name_and_the_old_one_goes(project: Project) -> None:
    old = {n for n in secret_names() if n.startswith(f"{APP}_develop_session_key_")}
    assert len(old) == 1
    (project.root / "examples/gaia/dev-secrets/session_key").write_text("rotated-value\n")
    ok(project.deploy("develop", "r3"))
    new = {n for n in secret_names() if n.startswith(f"{APP}_develop_session_key_")}
    assert len(new) == 1
    assert new != old
    backend = services(f"{APP}-develop-blue_backend")[f"{APP}-develop-blue_backend"]
    mounted = {s["SecretName"] for s in backend["Spec"]["TaskTemplate"]["ContainerSpec"]["Secrets"]}
    assert new <= mounted
    feature_key = {n for n in secret_names() if "feature-x" in n and "session_key" in n}
    assert feature_key, "feature/x keeps its own secret until it deploys again"


def test_a_release_whose_task_fails_is_refused_with_the_task_error(project: Project) -> None:
    services_yaml = raw(project)["services"]
    services_yaml["backend"]["command"] = ["python3", "-c", "raise SystemExit(3)"]
    broken = project.write_config("broken.yml", {"services": services_yaml})
    result = project.deploy("develop", "r4-broken", config=broken)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{APP}-develop-green_backend: task" in result.stderr
    assert "exit code 3" in result.stderr
    assert (
        f"rolled back: removed {APP}-develop-green; {APP}-develop-blue stays live" in result.stderr
    )
    assert "after 120s" not in result.stderr, "decided by the failed task, not at the timeout"
    develop = answers(PORTS["develop"]).json()
    assert (develop["colour"], develop["version"]) == ("blue", "r3")
    assert not services(f"{APP}-develop-green_")


def test_a_failing_migration_stops_the_deploy_before_the_new_colour(project: Project) -> None:
    services_yaml = raw(project)["services"]
    services_yaml["backend"]["env"] = {"GAIA_MIGRATE_FAIL": "1"}
    failing = project.write_config("failing-migration.yml", {"services": services_yaml})
    result = project.deploy("develop", "r4-migrate", config=failing)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"job {APP}-develop-migrate failed" in result.stderr
    assert "migrate: failed on purpose" in result.stderr
    assert "colour     deploy green" not in result.stdout
    assert not services(f"{APP}-develop-green_")
    develop = answers(PORTS["develop"]).json()
    assert (develop["colour"], develop["version"]) == ("blue", "r3")


def test_registry_auth_is_forwarded_and_needed(project: Project, testbed: Bed) -> None:
    """Pushes to the htpasswd registry and deploys. Then proves the flag matters: with the
    backend image deleted from the node, the deployed service (which carries the auth
    that --with-registry-auth forwarded) pulls it again, and the same stack deployed
    without the flag is refused the pull."""
    authed = project.write_config("auth.yml", {"registry": f"{testbed.auth_registry}/acme"})
    ok(project.deploy("feature/auth", "a1", config=authed))
    slug = config_module.load(authed).branch("feature/auth").slug
    stack = f"{APP}-{slug}-blue"
    backend = f"{stack}_backend"
    image = services(backend)[backend]["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    assert image.startswith(f"{testbed.auth_registry}/acme/{APP}-backend@sha256:")
    client = docker.from_env()

    def scale(replicas: int) -> None:
        docker_cli("service", "scale", "--detach", f"{backend}={replicas}")

    def delete_image_from_node() -> None:
        scale(0)
        for _ in range(120):
            if not client.containers.list(
                all=True, filters={"label": f"com.docker.swarm.service.name={backend}"}, sparse=True
            ):
                break
            time.sleep(0.5)
        client.images.remove(client.images.get(image).id, force=True)

    def verdict(stack_name: str) -> gate.Verdict:
        found = [
            facts.Service.parse(s)
            for s in client.api.services(
                filters={"label": f"com.docker.stack.namespace={stack_name}"}, status=True
            )
        ]
        tasks = client.api.tasks(filters={"service": [s.id for s in found]})
        return gate.judge_services(found, [facts.Task.parse(t) for t in tasks])

    try:
        delete_image_from_node()
        scale(2)
        pulled = gate.poll(lambda: verdict(stack), 90)
        assert pulled.done, f"the service that carries registry auth could not pull: {pulled}"

        delete_image_from_node()
        rendered = project.root / ".swarm-deploy" / slug / "stacks" / "app-blue.yml"
        docker_cli(
            "stack", "deploy", "--compose-file", str(rendered), "--resolve-image", "never",
            f"{APP}-noauth", env=project.env,
        )  # fmt: skip
        refused = gate.poll(lambda: verdict(f"{APP}-noauth"), 90)
        assert refused.failure is not None, f"a pull without registry auth succeeded: {refused}"
        assert f"{APP}-noauth_backend" in refused.failure
        assert re.search(r"No such image|unauthorized|authentication required", refused.failure)
    finally:
        docker_cli("stack", "rm", f"{APP}-noauth", check=False)
        client.close()
    ok(project.cli("destroy", "--branch", "feature/auth", config=authed))


def docker_cli(*args: str, check: bool = True, env: dict[str, str] | None = None) -> None:
    subprocess.run(["docker", *args], check=check, capture_output=True, env=env)


def test_without_a_registry_images_are_streamed_over_ssh(project: Project, testbed: Bed) -> None:
    output = ok(project.deploy("feature/x", "r2", "--no-registry", "--host", testbed.ssh_target))
    assert "transfer   stream 127.0.0.1:5000/acme/gaiat-backend:r2" in output
    assert "push" not in output
    feature = answers(PORTS["feature/x"]).json()
    assert (feature["colour"], feature["version"]) == ("green", "r2")
    backend = services(f"{APP}-feature-x")
    images = [
        s["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
        for n, s in backend.items()
        if n.endswith("_backend")
    ]
    assert images == ["127.0.0.1:5000/acme/gaiat-backend:r2"]


def test_status_shows_every_branch_and_the_shared_stack(project: Project) -> None:
    data = json.loads(ok(project.cli("status", "--json")))
    by_branch = {b["branch"]: b for b in data["branches"]}
    assert by_branch["develop"]["live_colour"] == "blue"
    assert by_branch["develop"]["release"] == "r3"
    assert by_branch["develop"]["ports"] == [PORTS["develop"]]
    assert by_branch["feature/x"]["release"] == "r2"
    assert all(s["running"] == s["desired"] for b in data["branches"] for s in b["services"])
    assert {s["name"] for s in data["shared"]} == {
        f"{APP}-shared_{n}" for n in ("postgres", "redis", "prometheus")
    }


def test_a_missing_secret_fails_before_anything_changes(project: Project) -> None:
    missing = project.write_config(
        "missing.yml",
        {"secrets": {**raw(project)["secrets"], "session_key": {"env": "GAIAT_NOT_SET"}}},
    )
    before = {name: s["Version"]["Index"] for name, s in services(f"{APP}-").items()}
    names_before = secret_names()
    result = project.deploy("develop", "r5", config=missing)
    assert result.returncode == 2
    assert "GAIAT_NOT_SET" in result.stderr
    assert "nothing was changed" in result.stderr
    assert {name: s["Version"]["Index"] for name, s in services(f"{APP}-").items()} == before
    assert secret_names() == names_before


def test_an_unusable_secret_value_fails_before_anything_changes(project: Project) -> None:
    """A file holding only a line break (like an empty variable: what a repository secret
    that is not set becomes in the workflow) passed every check, and the deploy broke at
    `docker secret create`, after the shared stack had changed."""
    (project.root / "examples/gaia/dev-secrets/blank").write_text("\n")
    secrets = {
        **raw(project)["secrets"],
        "session_key": {"file": "examples/gaia/dev-secrets/blank"},
    }
    blank = project.write_config("blank.yml", {"secrets": secrets})
    before = {name: s["Version"]["Index"] for name, s in services(f"{APP}-").items()}
    names_before = secret_names()
    result = project.deploy("develop", "r6", config=blank)
    assert result.returncode == 2
    assert (
        "  - session_key: value from file examples/gaia/dev-secrets/blank holds only "
        "whitespace (1 byte)\n" in result.stderr
    )
    assert "nothing was changed" in result.stderr
    assert {name: s["Version"]["Index"] for name, s in services(f"{APP}-").items()} == before
    assert secret_names() == names_before


def test_stale_branches_are_listed_before_anything_is_removed(project: Project) -> None:
    output = ok(project.cli("destroy", "--stale", "0", "--dry-run"))
    assert f"docker stack rm {APP}-develop-blue" in output
    assert f"docker stack rm {APP}-feature-x-" in output
    assert services(f"{APP}-develop-blue_"), "a dry run removes nothing"


def test_destroy_feature_x_leaves_develop_serving(project: Project) -> None:
    feature = answers(PORTS["feature/x"]).json()
    feature_db = feature["database"]
    redis_password = branch_password(project, "feature/x", "redis_password")
    develop_visits = get_json(PORTS["develop"], "/api/visits")["visits"]
    ok(project.cli("destroy", "--branch", "feature/x", "--drop-data"))
    assert answers(PORTS["develop"]).json()["version"] == "r3"
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{PORTS['feature/x']}/", timeout=2)
    assert not services(f"{APP}-feature-x")
    assert not [n for n in secret_names() if "feature-x" in n]
    admin = (project.root / "examples/gaia/dev-secrets/postgres_admin").read_text().strip()
    databases = psql(
        f"{APP}-shared", "postgres", admin, "postgres", "select datname from pg_database"
    )
    assert feature_db not in databases
    assert f"{APP}_develop_main" in databases
    assert "WRONGPASS" in redis_cli(feature["redis_user"], redis_password, "PING")
    redis_admin = (project.root / "examples/gaia/dev-secrets/redis_admin").read_text().strip()
    assert redis_cli("default", redis_admin, "EXISTS", f"{feature['redis_prefix']}k").strip() == "0"
    assert get_json(PORTS["develop"], "/api/visits")["visits"] == develop_visits + 1
    ok(project.cli("destroy", "--branch", "feature/x", "--drop-data"))  # rerunning is safe


def test_destroy_removes_what_the_target_holds_whatever_the_rules_say(project: Project) -> None:
    """A branch deployed under a rule that was dropped since is removed all the same (its
    names come from its slug); a branch no rule allows that left nothing has nothing to
    remove, and its deletion exits 0 (what destroy.yml runs on every deleted branch)."""
    ok(project.deploy("feature/ruled-out", "g1"))
    assert services(f"{APP}-feature-ruled-out-")
    no_feature_rule = project.write_config(
        "no-feature-rule.yml",
        {"branches": [b for b in raw(project)["branches"] if b["match"] != "feature/*"]},
    )
    output = ok(project.cli("destroy", "--branch", "feature/ruled-out", config=no_feature_rule))
    assert "no rule allows feature/ruled-out any more: removing what it left on local" in output
    assert output.endswith("feature/ruled-out removed from local\n")
    assert not services(f"{APP}-feature-ruled-out-")
    assert not [n for n in secret_names() if "feature-ruled-out" in n]
    again = ok(project.cli("destroy", "--branch", "feature/ruled-out", config=no_feature_rule))
    assert again == "nothing of feature/ruled-out is on local: nothing to remove\n"
    never = ok(project.cli("destroy", "--branch", "fix/typo"))
    assert never == "nothing of fix/typo is on local: nothing to remove\n"


def test_the_same_release_with_another_secret_value_is_deployed(project: Project) -> None:
    """The release name alone decided: "already at r3, nothing to do", and the old value
    kept serving."""
    (project.root / "examples/gaia/dev-secrets/session_key").write_text("rotated-again\n")
    output = ok(project.deploy("develop", "r3"))
    assert "develop is live: green, release r3" in output
    (new,) = {n for n in secret_names() if n.startswith(f"{APP}_develop_session_key_")}
    backend = services(f"{APP}-develop-green_backend")[f"{APP}-develop-green_backend"]
    mounted = {s["SecretName"] for s in backend["Spec"]["TaskTemplate"]["ContainerSpec"]["Secrets"]}
    assert new in mounted
    again = ok(project.deploy("develop", "r3"))
    assert "develop is already at r3 (green) on local: nothing to do" in again


def test_outside_git_a_changed_app_gets_a_release_of_its_own(project: Project) -> None:
    """Outside a git work tree every release was `dev`: after an edit, deploy said
    "already at dev, nothing to do", exit 0, and the old code kept serving."""
    ok(project.cli("deploy", "--branch", "develop"))
    first = answers(PORTS["develop"]).json()["version"]
    assert re.fullmatch(r"dev-[0-9a-f]{12}", first)
    app = project.root / "examples/gaia/backend/app.py"
    app.write_text(app.read_text() + "\n# an edit\n")
    output = ok(project.cli("deploy", "--branch", "develop"))
    edited = answers(PORTS["develop"]).json()["version"]
    assert re.fullmatch(r"dev-[0-9a-f]{12}", edited)
    assert edited != first
    assert f"develop is live: green, release {edited}" in output


def raw(project: Project) -> dict[str, Any]:
    """The tests' config as plain data, to change a key of."""
    data: dict[str, Any] = yaml.safe_load(project.config.read_text())
    return data
