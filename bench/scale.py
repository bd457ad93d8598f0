"""Many branches on one VM: what each costs, and whether the tenth deploys like the first.

    python -m bench.scale [--branches 10] [--out docs]

On the test bed, an app of its own (`gaias`) deploys feature/s1 ... feature/sN side by
side (each: an nginx, a data relay, 2 backends, a frontend, a bot). It prints and writes
to docs/scale.md: each deploy's wall time, the memory of each branch's containers and of
the shared stack (`docker stats`), and how long `plan` takes for 50 branches.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import docker
import yaml
from docker.errors import NotFound

from bench.run import ROOT, Recorder, machine, sh
from bench.testbed import copy_project, scrub
from swarm_deploy import profiles, usecases
from swarm_deploy.naming import BranchNames
from swarm_deploy.pipeline import Project

APP = "gaias"


def make_project(root: Path) -> Project:
    copy_project(ROOT, root)
    data = profiles.merged_data(ROOT / "swarm-deploy.local.yml")
    data["app"] = APP
    data["branches"] = [{"match": "feature/*"}]
    (root / "swarm-deploy.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    return Project.load(root / "swarm-deploy.yml")


def memory_mib(client: docker.DockerClient, stack_prefix: str) -> float:
    """Resident memory of the running containers whose stack starts with the prefix."""
    total = 0
    for container in client.api.containers(filters={"label": "com.docker.stack.namespace"}):
        if not container["Labels"]["com.docker.stack.namespace"].startswith(stack_prefix):
            continue
        try:
            usage = client.api.stats(container["Id"], stream=False)["memory_stats"]
        except NotFound:
            continue  # a job's container, gone meanwhile
        total += usage.get("usage", 0) - usage.get("stats", {}).get("inactive_file", 0)
    return total / 1024 / 1024


def plan_seconds(project: Project, count: int) -> float:
    started = time.perf_counter()
    for n in range(count):
        usecases.plan(usecases.PlanRequest(project, f"feature/plan-{n}", "p1", environ={}))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--branches", type=int, default=10)
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    sh(str(ROOT / "scripts" / "testbed"), "up")
    scrub(APP)
    project = make_project(Path(tempfile.mkdtemp(prefix="swarm-deploy-scale-")))
    planned = plan_seconds(project, 50)
    print(f"plan for 50 branches: {planned:.2f}s", flush=True)
    walls = []
    client = docker.from_env()
    try:
        for n in range(1, args.branches + 1):
            started = time.monotonic()
            usecases.deploy(
                usecases.DeployRequest(project, f"feature/s{n}", "s1", actor="bench"), Recorder()
            )
            walls.append(time.monotonic() - started)
            print(f"feature/s{n}: deployed in {walls[-1]:.1f}s", flush=True)
        time.sleep(10)  # let every process settle before measuring memory
        per_branch = [
            memory_mib(client, f"{APP}-{BranchNames.derive(APP, f'feature/s{n}').slug}-")
            for n in range(1, args.branches + 1)
        ]
        shared = memory_mib(client, f"{APP}-shared")
        free = sh("free", "-m").stdout.splitlines()[1].split()
    finally:
        client.close()
        scrub(APP)
    lines = [
        "# Many branches on one VM",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} by `python -m bench.scale` on the test bed: "
        f"{machine()}.",
        "",
        f"- {args.branches} branches deployed side by side, one after the other: the first in "
        f"{walls[0]:.1f} s (shared stack, base images), the tenth in {walls[-1]:.1f} s; "
        f"median {statistics.median(walls):.1f} s.",
        f"- Memory per branch (nginx, data relay, 2 backends, frontend, bot; resident, "
        f"`docker stats`): median {statistics.median(per_branch):.0f} MiB, max "
        f"{max(per_branch):.0f} MiB. The shared stack (PostgreSQL, Redis, Prometheus): "
        f"{shared:.0f} MiB.",
        f"- The machine with all of them running: {free[2]} MiB used of {free[1]} MiB.",
        f"- `plan` for 50 branches, offline: {planned:.2f} s in all.",
        "",
        "| branch | deploy wall time (s) | memory (MiB) |",
        "| --- | --- | --- |",
        *(
            f"| feature/s{n} | {wall:.1f} | {memory:.0f} |"
            for n, (wall, memory) in enumerate(zip(walls, per_branch, strict=True), start=1)
        ),
        "",
    ]
    (args.out / "scale.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
