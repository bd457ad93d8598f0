"""A deploy stopped from outside converges, on the test bed's real Swarm, under load.

The deployer is the real `swarm-deploy` process; a fault point (interrupts.py, set with
SWARM_DEPLOY_FAULT) makes it SIGKILL or SIGTERM itself at a step boundary or around the
switch's one command in nginx (a TERM while it runs is held until it ends). Then the
next deploy runs as a person or CI would, and the branch must be whole: one colour,
nginx, its file and the labels agreeing (`status` shows no problem), the release live.
The load runs the whole time: new connections and browser-like keep-alive clients must
see no failed request. Every boundary is stopped in the fast suite
(tests/unit/test_interrupts.py); here, the points where what users get can change.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

from swarm_deploy.interrupts import FAULT_ENV
from tests.engine.conftest import PORTS, Project, Traffic, answers

SWARM_DEPLOY = shutil.which("swarm-deploy") or "swarm-deploy"
BRANCH = "feature/kill"
PORT = PORTS[BRANCH]
POINTS = [
    ("after:colour", "KILL"),
    ("before:switch", "TERM"),
    # the switch is one command in nginx: a signal while it runs waits for its verdict
    # (TERM); a deployer killed just before it, or once it has switched and verified
    ("switch:running", "KILL"),
    ("switch:running", "TERM"),
    ("switch:verified", "KILL"),
    ("switch:verified", "TERM"),
    ("before:record", "KILL"),
    ("before:singletons", "TERM"),
    ("before:drain", "KILL"),
    ("before:drain", "TERM"),
]


def status(project: Project, config: Path) -> dict[str, object]:
    result = project.cli("status", "--branch", BRANCH, "--json", config=config)
    assert result.returncode == 0, result.stderr
    (branch,) = json.loads(result.stdout)["branches"]
    return dict(branch)


def test_a_deploy_stopped_at_each_point_converges_and_nobody_notices(project: Project) -> None:
    # a killed deployer's lock is taken over once its heartbeat is this old
    config = project.write_config("kill.yml", {"lock": {"stale_after": "10s"}})
    first = project.deploy(BRANCH, "k0", config=config)
    assert first.returncode == 0, first.stdout + first.stderr
    rows = []
    with Traffic(PORT) as traffic:
        for number, (point, signal) in enumerate(POINTS, start=1):
            release = f"k{number}"
            began = time.time()
            stopped = subprocess.run(
                [SWARM_DEPLOY, "deploy", "--branch", BRANCH, "--release", release,
                 "--config", str(config)],
                cwd=project.root, env=project.env | {FAULT_ENV: f"{point}:{signal}"},
                capture_output=True, text=True, timeout=600, check=False,
            )  # fmt: skip
            assert stopped.returncode != 0, f"{point}: the fault point never fired"
            again = project.deploy(BRANCH, release, "--lock-wait", "120", config=config)
            assert again.returncode == 0, f"{point} {signal}: {again.stdout}{again.stderr}"
            seen = status(project, config)
            assert (seen["release"], seen["problems"]) == (release, []), (point, signal, seen)
            assert answers(PORT).json()["version"] == release
            rows.append((point, signal, stopped.returncode, began, time.time()))
    failed = traffic.failed("new") + traffic.failed("keepalive")
    print(f"\n{'point':<18} {'signal':<6} exit  failed requests")
    for point, signal, code, began, ended in rows:
        during = [s for s in failed if began <= s.t <= ended]
        print(f"{point:<18} {signal:<6} {code:>4}  {len(during)}")
    total = traffic.count("new") + traffic.count("keepalive")
    print(f"{len(failed)} of {total} requests failed (new connections, retrying keep-alive)")
    assert traffic.failures("new", "keepalive") == {}
