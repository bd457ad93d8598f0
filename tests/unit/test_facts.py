"""Typed facts: the Engine API's JSON is read in facts.py (and fetched in engine.py) only,
and the parsers read what the Engine reports into the values the rest works on."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import swarm_deploy
from swarm_deploy import facts
from swarm_deploy.naming import label
from tests.unit.swarm_sim import START, Service, Sim, SimSwarm

PACKAGE = Path(swarm_deploy.__file__).parent
# the modules that may look inside the Engine's JSON: the one that fetches it, the one
# that parses it
READERS = frozenset({"engine.py", "facts.py"})
# a lookup by an Engine API key: ["Spec"], ["ID"], .get("Status"), ... (not ["PORT"]:
# environment variables are all capitals)
RAW = re.compile(r"""(\[\s*|\.get\(\s*)(["'])(ID|[A-Z][a-z]\w*)\2""")


def raw_lookups(text: str) -> list[int]:
    return [number for number, line in enumerate(text.splitlines(), 1) if RAW.search(line)]


def test_no_module_but_facts_and_engine_reads_raw_engine_json() -> None:
    found = [
        f"{path.name}:{number}"
        for path in sorted(PACKAGE.glob("**/*.py"))
        if path.name not in READERS
        for number in raw_lookups(path.read_text())
    ]
    assert found == [], "read the Engine's JSON through swarm_deploy.facts"


def test_the_pattern_finds_engine_keys_and_not_environment_variables() -> None:
    text = 'a = s["Spec"]["Name"]\nb = t.get("Status", {})\nc = n["ID"]\nenv["PORT"] = "1"\n'
    assert raw_lookups(text) == [1, 2, 3]


SERVICE = {
    "ID": "svc1",
    "CreatedAt": "2026-11-23T08:30:00Z",
    "UpdatedAt": "2026-11-30T12:00:00.123456789Z",
    "Spec": {
        "Name": "gaia-shared_postgres",
        "Labels": {"swarm-deploy.definition": "abc"},
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": "postgres:17@sha256:00",
                "Secrets": [{"SecretName": "gaia_shared_pg_1"}],
            }
        },
        "Mode": {"Replicated": {"Replicas": 2}},
    },
    "Endpoint": {"Spec": {"Ports": [{"PublishedPort": 8080}, {"TargetPort": 80}]}},
    "ServiceStatus": {"RunningTasks": 1, "DesiredTasks": 2},
    "UpdateStatus": {"State": "paused", "Message": "update paused"},
}


def test_a_service_is_read_into_its_fields() -> None:
    service = facts.Service.parse(SERVICE)
    assert service == facts.Service(
        id="svc1",
        name="gaia-shared_postgres",
        labels={"swarm-deploy.definition": "abc"},
        image="postgres:17@sha256:00",
        replicas=2,
        running=1,
        desired=2,
        created_at=datetime(2026, 11, 23, 8, 30, tzinfo=UTC),
        updated_at=datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC),
        update_state="paused",
        update_message="update paused",
        secrets=frozenset({"gaia_shared_pg_1"}),
        ports=(8080,),
    )


def test_a_global_service_or_a_job_has_no_replica_count() -> None:
    job = json.loads(json.dumps(SERVICE))
    job["Spec"]["Mode"] = {"ReplicatedJob": {}}
    assert facts.Service.parse(job).replicas is None


def test_a_task_is_read_into_its_fields_and_runs_only_when_swarm_wants_it_to() -> None:
    raw = {
        "ID": "t1", "ServiceID": "svc1", "Slot": 3, "NodeID": "n1",
        "CreatedAt": "2026-11-30T12:00:01Z", "DesiredState": "shutdown",
        "Status": {
            "State": "running", "Err": "boom",
            "ContainerStatus": {"ContainerID": "c1", "ExitCode": 2},
        },
    }  # fmt: skip
    task = facts.Task.parse(raw)
    assert task == facts.Task(
        id="t1", service_id="svc1", slot=3, node_id="n1", state="running",
        desired_state="shutdown", created_at=datetime(2026, 11, 30, 12, 0, 1, tzinfo=UTC),
        error="boom", exit_code=2, container_id="c1",
    )  # fmt: skip
    assert not task.running


def test_a_configs_data_is_decoded_and_its_update_stamp_defaults_to_its_creation() -> None:
    raw = {
        "ID": "c1", "CreatedAt": "2026-11-30T12:00:00Z",
        "Spec": {"Name": "gaia_develop_lock", "Data": "eyJ3aG8iOiAibWUifQ=="},
    }  # fmt: skip
    stored = facts.Stored.parse(raw)
    assert (stored.name, stored.data, stored.labels) == ("gaia_develop_lock", b'{"who": "me"}', {})
    assert stored.updated_at == stored.created_at == datetime(2026, 11, 30, 12, tzinfo=UTC)


def test_each_edge_of_the_app_is_read_with_the_time_it_was_created() -> None:
    """What plan counts a week's certificates by: the app's edges, each created once."""
    sim = Sim()
    edge = {label("app"): "gaia", label("service"): "nginx"}
    sim._add(Service("gaia-develop-edge_nginx", "nginx", edge, {}, 1))
    sim.advance(3600)
    sim._add(Service("gaia-feature-x-edge_nginx", "nginx", edge, {}, 1))
    sim._add(Service("other-develop-edge_nginx", "nginx", {**edge, label("app"): "other"}, {}, 1))
    backend = {label("app"): "gaia", label("service"): "backend"}
    sim._add(Service("gaia-develop-blue_backend", "backend", backend, {}, 1))
    found = facts.edges(SimSwarm(sim, "local"), "gaia")
    assert {edge.name: edge.created_at for edge in found} == {
        "gaia-develop-edge_nginx": START,
        "gaia-feature-x-edge_nginx": START + timedelta(hours=1),
    }
