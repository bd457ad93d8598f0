"""`doctor`: what a first deploy needs of the target, read once and checked
(doctor.py decides). The face is usecases.py."""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime

from swarm_deploy import doctor_facts, facts
from swarm_deploy.commands import registry_host
from swarm_deploy.doctor import Finding, Read, decide
from swarm_deploy.engine import Executor, manager_problem
from swarm_deploy.errors import TargetError
from swarm_deploy.pipeline import Project
from swarm_deploy.usecases_plan import open_swarm, target


@dataclass(frozen=True)
class DoctorRequest:
    project: Project
    host: str | None = None


@dataclass(frozen=True)
class Diagnosis:
    target: str
    findings: list[Finding]


def doctor(request: DoctorRequest) -> Diagnosis:
    """Read the target (ssh, engine, host) and the deployer's login; decide every check."""
    config = request.project.config
    where = target(config, request.host)
    executor = Executor(config.root)
    probe = doctor_facts.probe_ssh(executor, where)
    login = doctor_facts.login(registry_host(config.registry), executor.env)
    now = datetime.now(UTC)
    client = doctor_facts.client_version(executor)
    if probe is not None and probe.returncode != 0:
        return Diagnosis(where, decide(config, where, Read(probe, login, now, client)))
    try:
        swarm = open_swarm(config, where)
    except TargetError as exc:
        return Diagnosis(where, decide(config, where, Read(probe, login, now, client, str(exc))))
    with closing(swarm):
        engine = facts.engine(swarm)
        manager = manager_problem(where, swarm.info) is None
        read = Read(
            probe, login, now, client,
            info=swarm.info,
            engine=engine,
            host=doctor_facts.host(executor, where, engine),
            nodes=tuple(facts.nodes(swarm)) if manager else (),
            services=tuple(facts.services(swarm, {})) if manager else (),
            forwarded=swarm.forward is not None if where.startswith("ssh://") else None,
        )  # fmt: skip
    return Diagnosis(where, decide(config, where, read))
