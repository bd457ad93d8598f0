"""The benchmark: swarm-deploy's blue/green against Swarm's own ways, under steady load.

    make bench            # or: python -m bench.run --deploys 10 --out docs

On the test bed's Swarm, an app of the benchmark's own (`gaiab`, develop on port 18095)
gets steady load through the branch's nginx (bench/load.py, default 350 req/s), while:

  1. swarm-deploy deploys K releases in a row (blue/green: gate, switch, drain);
  2. a release whose backend crashes at start is deployed (how fast is it refused?);
  3. Swarm's native rolling update (`docker service update`, order start-first)
     replaces the live backend's image K/2 times, alternating two releases;
  4. `docker stack rm` + `docker stack deploy` replaces the live colour a few times.

It prints, per strategy: failed requests by kind of client, p50/p99 latency inside the
change windows against steady state, the wall time of each change, swarm-deploy's
switch time and the crash's rollback decision time. It writes docs/benchmarks.md (the
figures and the machine), docs/benchmark.png (latency and failures over time, each
change marked) and docs/benchmark-samples.jsonl.gz.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import yaml

from bench.load import Sample, read, summarize
from bench.testbed import copy_project, scrub
from swarm_deploy import facts, gate, profiles, usecases
from swarm_deploy.errors import DeployError
from swarm_deploy.naming import BranchNames
from swarm_deploy.pipeline import Project
from swarm_deploy.plan import Step

ROOT = Path(__file__).resolve().parent.parent
APP, BRANCH, PORT = "gaiab", "develop", 18095


@dataclass
class Change:
    """One change of the live release, with the moments that matter, on the wall clock."""

    strategy: str
    label: str
    start: float
    end: float = 0.0
    switch: tuple[float, float] | None = None
    ok: bool = True
    note: str = ""


@dataclass
class Recorder:
    """A swarm-deploy reporter that keeps each step's wall-clock begin and end."""

    steps: dict[str, tuple[float, float]] = field(default_factory=dict)
    began: float = 0.0

    def begin(self, number: int, total: int, step: Step) -> None:
        self.began = time.time()

    def end(self, step: Step, seconds: float, ok: bool) -> None:
        self.steps[step.phase] = (self.began, time.time())

    def skipped(self, number: int, total: int, step: Step) -> None:
        pass  # not run: no time of its own

    def status(self, text: str) -> None:
        pass

    def note(self, text: str) -> None:
        pass


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check)


def make_project(root: Path, crashing: bool = False) -> Project:
    """A copy of the project for the benchmark's app; `crashing`: its backend exits at start.
    Each copy renders into its own directory, so the crash never leaks into the others."""
    copy_project(ROOT, root)
    data = profiles.merged_data(ROOT / "swarm-deploy.local.yml")
    data["app"] = APP
    data["branches"] = [{"match": BRANCH, "port": PORT}]
    if crashing:
        data["services"]["backend"]["command"] = ["python3", "-c", "raise SystemExit(4)"]
    (root / "swarm-deploy.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    return Project.load(root / "swarm-deploy.yml")


def ours(project: Project, release: str) -> tuple[Change, float, float]:
    """One swarm-deploy deploy: the change window (switch to end of drain), the deploy's
    wall time and the switch's own duration."""
    recorder = Recorder()
    usecases.deploy(usecases.DeployRequest(project, BRANCH, release, actor="bench"), recorder)
    switch = recorder.steps["switch"]
    drained = recorder.steps.get("drain", switch)
    change = Change("swarm-deploy", release, switch[0], drained[1], switch)
    begins = [begin for begin, _ in recorder.steps.values()]
    ends = [end for _, end in recorder.steps.values()]
    return change, max(ends) - min(begins), switch[1] - switch[0]


def crash_decision(crashing: Project) -> float:
    """Seconds from the crashing release's first failed task to the deployer's decision."""
    client = docker.from_env()
    first_failure: list[float] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for service in client.api.services():
                if (
                    service["Spec"]["Name"].startswith(f"{APP}-{BRANCH}-")
                    and "_backend" in service["Spec"]["Name"]
                ):
                    for task in client.api.tasks(filters={"service": service["ID"]}):
                        if task["Status"]["State"] == "failed":
                            first_failure.append(
                                gate.parse_time(task["Status"]["Timestamp"]).timestamp()
                            )
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        usecases.deploy(
            usecases.DeployRequest(crashing, BRANCH, "crash", actor="bench"), Recorder()
        )
        raise SystemExit("the crashing release was deployed: the benchmark is broken")
    except DeployError:
        decided = time.time()
    finally:
        stop.set()
        watcher.join()
        client.close()
    return decided - min(first_failure)


def live_backend(client: docker.DockerClient) -> tuple[str, str]:
    """The live colour's backend service name and image."""
    for service in client.services.list():
        name = service.name
        if name.startswith(f"{APP}-{BRANCH}-") and name.endswith("_backend"):
            return name, service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    raise SystemExit("no live backend found")


def native(images: list[str], count: int, changes: list[Change]) -> None:
    client = docker.from_env()
    try:
        service, current = live_backend(client)
        for i in range(count):
            image = images[i % 2] if images[i % 2] != current else images[(i + 1) % 2]
            change = Change("native start-first", f"update {i + 1}", time.time())
            result = sh(
                "docker", "service", "update", "--detach=false", "--quiet", "--image", image,
                "--update-order", "start-first", "--update-parallelism", "1",
                "--update-delay", "0s", "--no-resolve-image", service, check=False,
            )  # fmt: skip
            change.end = time.time()
            change.ok = result.returncode == 0
            changes.append(change)
            current = image
            time.sleep(5)
    finally:
        client.close()


def remove_and_redeploy(project: Project, count: int, changes: list[Change]) -> None:
    client = docker.from_env()
    try:
        service, _ = live_backend(client)
        stack = service.rsplit("_", 1)[0]
        colour = stack.rsplit("-", 1)[1]
        rendered = project.config.root / ".swarm-deploy" / BranchNames.derive(APP, BRANCH).slug
        compose = rendered / "stacks" / f"app-{colour}.yml"
        for i in range(count):
            change = Change("stack rm + deploy", f"redeploy {i + 1}", time.time())
            sh("docker", "stack", "rm", stack)
            while client.containers.list(filters={"label": f"com.docker.stack.namespace={stack}"}):
                time.sleep(0.2)
            sh(
                "docker",
                "stack",
                "deploy",
                "--compose-file",
                str(compose),
                "--resolve-image",
                "never",
                stack,
            )

            def look() -> gate.Verdict:
                found = [
                    facts.Service.parse(s)
                    for s in client.api.services(
                        filters={"label": f"com.docker.stack.namespace={stack}"}, status=True
                    )
                ]
                tasks = client.api.tasks(filters={"service": [s.id for s in found]})
                return gate.judge_services(found, [facts.Task.parse(t) for t in tasks])

            verdict = gate.poll(look, 120)
            change.end = time.time()
            if not verdict.done:
                raise SystemExit(f"stack rm + deploy did not come back: {verdict}")
            changes.append(change)
            time.sleep(5)
    finally:
        client.close()


def stats(samples: list[Sample]) -> dict[str, dict[str, Any]]:
    return {
        s.kind: {"requests": s.requests, "failed": s.failed, "retried": s.retried,
                 "p50_ms": s.p50_ms, "p99_ms": s.p99_ms}
        for s in summarize(samples)
    }  # fmt: skip


def strategy_stats(
    samples: list[Sample], changes: list[Change], strategy: str, phase: tuple[float, float]
) -> dict[str, Any]:
    """Failures over the whole phase (a change's damage can outlast it: nginx's DNS cache,
    connections to tasks that are gone), latency inside the changes' windows."""
    mine = [c for c in changes if c.strategy == strategy]
    in_phase = [s for s in samples if phase[0] <= s.t < phase[1]]
    in_windows = [s for s in in_phase if any(c.start <= s.t <= c.end for c in mine)]
    return {
        "changes": len(mine),
        "phase_s": round(phase[1] - phase[0], 1),
        "phase": stats(in_phase),
        "windows": stats(in_windows),
        "wall_s": [round(c.end - c.start, 1) for c in mine],
    }


def steady_stats(
    samples: list[Sample], changes: list[Change], phase: tuple[float, float]
) -> dict[str, Any]:
    """The swarm-deploy phase away from its switches: the machine's baseline under load."""
    quiet = [
        s
        for s in samples
        if phase[0] <= s.t < phase[1] and not any(c.start - 2 <= s.t <= c.end + 2 for c in changes)
    ]
    return stats(quiet)


def plot(samples: list[Sample], changes: list[Change], path: Path) -> None:
    # only the benchmark needs matplotlib (bench/requirements.txt), and without a display
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    t0 = min(s.t for s in samples)
    fig, ax = plt.subplots(figsize=(14, 5), dpi=110)
    colours = {"new": "#1f77b4", "keepalive": "#2ca02c", "stubborn": "#9467bd"}
    for kind, colour in colours.items():
        ok = [(s.t - t0, s.ms) for s in samples if s.kind == kind and not s.failed]
        if ok:
            ax.scatter(*zip(*ok, strict=True), s=1, alpha=0.35, color=colour, label=f"{kind} (ok)")
    failed = [(s.t - t0, max(s.ms, 0.5)) for s in samples if s.failed]
    if failed:
        ax.scatter(
            *zip(*failed, strict=True), s=18, marker="x", color="red", label="failed request"
        )
    shades = {
        "swarm-deploy": "#2ca02c",
        "native start-first": "#ff7f0e",
        "stack rm + deploy": "#d62728",
    }
    seen = set()
    for change in changes:
        label = change.strategy if change.strategy not in seen else None
        seen.add(change.strategy)
        ax.axvspan(
            change.start - t0,
            change.end - t0,
            color=shades[change.strategy],
            alpha=0.15,
            label=label,
        )
        if change.switch:
            ax.axvline(change.switch[1] - t0, color="black", linewidth=0.6)
    ax.set_yscale("log")
    ax.set_xlabel("seconds")
    ax.set_ylabel("latency (ms, log)")
    ax.set_title("Latency and failures through the branch's nginx (black: swarm-deploy's switches)")
    ax.legend(loc="upper left", fontsize=8, markerscale=4)
    fig.tight_layout()
    fig.savefig(path)


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    memory = (
        int(
            next(
                line.split()[1]
                for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")
            )
        )
        // 1024
        // 1024
    )
    engine = sh("docker", "version", "--format", "{{.Server.Version}}").stdout.strip()
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {memory} GiB, {platform.platform()}, "
        f"Docker engine {engine}, Python {platform.python_version()}"
    )


def failed_of(found: dict[str, Any] | None) -> str:
    return f"{found['failed']} of {found['requests']}" if found else "-"


def report(results: dict[str, Any], out: Path) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"Measured {results['date']} by `make bench` (bench/run.py) on the test bed: "
        f"{results['machine']}.",
        f"Load through the branch's nginx: {results['load']}. One run: ratios hold,",
        "absolute figures move with the machine (these are shared, noisy machines).",
        "",
        "Failed requests are counted over each strategy's whole phase (its changes and the",
        "seconds after them, until the next phase), by kind of client; latency is that of",
        "new-connection requests inside the change windows.",
        "",
        "| strategy | changes | failed: new connection | failed: keep-alive, retrying "
        "| failed: keep-alive, never retrying | p50 / p99 ms in the windows "
        "| wall time per change (s) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for strategy, found in results["strategies"].items():
        phase, windows = found["phase"], found["windows"].get("new", {})
        walls = found["wall_s"]
        wall = f"{statistics.median(walls):.1f} median, {max(walls):.1f} max" if walls else "-"
        lines.append(
            f"| {strategy} | {found['changes']} | {failed_of(phase.get('new'))} "
            f"| {failed_of(phase.get('keepalive'))} | {failed_of(phase.get('stubborn'))} "
            f"| {windows.get('p50_ms', '-')} / {windows.get('p99_ms', '-')} | {wall} |"
        )
    steady = results["steady"].get("new", {})
    lines += [
        "",
        f"Steady state (the swarm-deploy phase away from its switches), new connections: "
        f"p50 {steady.get('p50_ms')} ms, p99 {steady.get('p99_ms')} ms, "
        f"{failed_of(steady or None)} failed.",
        "",
        f"- swarm-deploy deploy wall time (build to prune, images cached): median "
        f"{statistics.median(results['deploy_wall_s']):.1f} s; the switch (write, `nginx -t`, "
        f"reload, verify): median {statistics.median(results['switch_s']):.2f} s.",
        f"- Windows: for swarm-deploy from the switch to the end of the drain "
        f"({results['drain_s']:g} s); for the native update the whole `docker service "
        "update`; for rm + deploy from `stack rm` until every task runs again.",
        f"- Rollback decision for a release whose backend exits at start: "
        f"{results['crash_decision_s']:.1f} s from its first failed task to the deployer's "
        f"decision (the gate's timeout is 120 s); requests failed meanwhile: "
        f"{failed_of(results['strategies']['refused release']['phase'].get('new'))} "
        "(new connections).",
        "- Keep-alive clients that never retry lose a request when nginx's reload closes their",
        "  idle connection; browsers retry such requests, so users do not see them.",
        "",
        "![latency and failures over time](benchmark.png)",
        "",
    ]
    text = "\n".join(lines)
    (out / "benchmarks.md").write_text(text)
    return text


LOAD_ARGS = ("--new", "200", "--keepalive", "50", "50", "--stubborn", "50")


@dataclass
class Run:
    """What one benchmark run saw, on the wall clock."""

    changes: list[Change] = field(default_factory=list)
    marks: dict[str, float] = field(default_factory=dict)
    deploy_wall: list[float] = field(default_factory=list)
    switch_s: list[float] = field(default_factory=list)
    decision: float = 0.0


def scenario(project: Project, args: argparse.Namespace, samples_file: Path) -> Run:
    """Load on, then each strategy in turn; the phases are marked as they begin."""
    run = Run()
    print("first deploy (v0)", flush=True)
    usecases.deploy(usecases.DeployRequest(project, BRANCH, "v0", actor="bench"), Recorder())
    load = subprocess.Popen(
        [sys.executable, "-m", "bench.load", "--url", f"http://127.0.0.1:{PORT}/api/",
         *LOAD_ARGS, "--seconds", "3600", "--out", str(samples_file)],
        cwd=ROOT,
    )  # fmt: skip
    time.sleep(10)
    run.marks["swarm-deploy"] = time.time()
    for i in range(1, args.deploys + 1):
        change, wall, switch = ours(project, f"v{i}")
        run.changes.append(change)
        run.deploy_wall.append(wall)
        run.switch_s.append(switch)
        print(f"deploy v{i}: {wall:.1f}s, switch {switch:.2f}s", flush=True)
        time.sleep(3)
    run.marks["refused release"] = time.time()
    run.decision = crash_decision(make_project(Path(tempfile.mkdtemp()), crashing=True))
    print(f"crashing release refused {run.decision:.1f}s after its first failed task", flush=True)
    time.sleep(5)
    client = docker.from_env()
    _, latest = live_backend(client)
    client.close()
    edge = json.loads(sh("docker", "service", "inspect", f"{APP}-{BRANCH}-edge_nginx").stdout)
    previous = edge[0]["Spec"]["Labels"]["swarm-deploy.previous.image.backend"]
    run.marks["native start-first"] = time.time()
    native([latest, previous], args.native, run.changes)
    print("native rolling updates done", flush=True)
    run.marks["stack rm + deploy"] = time.time()
    remove_and_redeploy(project, args.redeploys, run.changes)
    print("stack rm + deploy done", flush=True)
    time.sleep(10)
    run.marks["end"] = time.time()
    load.send_signal(signal.SIGTERM)
    load.wait(timeout=120)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--deploys", type=int, default=10)
    parser.add_argument("--native", type=int, default=6)
    parser.add_argument("--redeploys", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    sh(str(ROOT / "scripts" / "testbed"), "up")
    scrub(APP)
    workdir = Path(tempfile.mkdtemp(prefix="swarm-deploy-bench-"))
    project = make_project(workdir)
    samples_file = workdir / "samples.jsonl"
    try:
        run = scenario(project, args, samples_file)
    finally:
        scrub(APP)
    samples = read(samples_file)
    phases = {
        name: (run.marks[name], end)
        for name, end in zip(run.marks, list(run.marks.values())[1:], strict=False)
    }
    results = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "load": f"{' '.join(LOAD_ARGS)} (req/s; bench/load.py)",
        "strategies": {
            name: strategy_stats(samples, run.changes, name, phases[name]) for name in phases
        },
        "steady": steady_stats(samples, run.changes, phases["swarm-deploy"]),
        "phases": phases,
        "changes": [c.__dict__ for c in run.changes],
        "deploy_wall_s": [round(x, 1) for x in run.deploy_wall],
        "switch_s": [round(x, 2) for x in run.switch_s],
        "drain_s": project.config.edge.drain,
        "crash_decision_s": round(run.decision, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    plot(samples, run.changes, args.out / "benchmark.png")
    with gzip.open(args.out / "benchmark-samples.jsonl.gz", "wt") as raw:
        raw.writelines(json.dumps(s.__dict__) + "\n" for s in samples)
    (args.out / "benchmark.json").write_text(json.dumps(results, indent=2) + "\n")
    print(report(results, args.out))


if __name__ == "__main__":
    main()
