"""The benchmark: how fast a changed release goes live, and what it costs the users,
with swarm-deploy and with Swarm's own tools, under steady load.

    make bench            # or: python -m bench.run --deploys 10 --out docs

Two releases of the benchmark's own app (`gaiab`, develop on port 18095), `a` and `b`,
are built and published once (the first two deploys on one node build them); every
measured change then alternates between them by digest, as `deploy --image NAME=REF`
does: a changed release whose images are published already. On the test bed's single
node, then on its three-node Swarm (scripts/testbed-cluster, brought up and down here),
steady load goes through the branch's nginx (bench/load.py) while:

  1. swarm-deploy deploys the other release K times (blue/green: gate, switch, drain);
  2. (one node) a release whose backend crashes at start is deployed: how fast is it
     refused?
  3. `docker stack deploy` of the live colour's stack file with the other release's
     images (Swarm's rolling update, in place), N times;
  4. `docker service update --update-order start-first` puts the other release's image
     on the live backend, N times.

Each change's time to live and total are defined in bench/figures.py: time to live ends
when no new request can reach the old release (swarm-deploy: the end of its `switch`
step; Swarm's tools: every task of the changed services runs the new image, none the old
one), total when the command returns. Swarm's tools run as swarm-deploy reaches the
Swarm (`docker --host` the same target), with `--detach=false`.

It prints each change and the figures, and writes docs/benchmarks.md (the tables and the
machine), docs/benchmarks.png (latency and failures over time) and docs/benchmarks.json
(every change, the figures); `--name` changes the files' name. Every request's outcome
goes to samples.jsonl.gz in the benchmark's temporary directory (printed): megabytes.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import docker
import yaml

from bench.figures import (
    AFTER,
    BEFORE,
    Change,
    Spread,
    StepTime,
    ratio,
    release_stack,
    serves_only,
    shares,
    switched,
)
from bench.load import Sample, read, summarize
from bench.testbed import (
    CLUSTER,
    CLUSTER_EDGE,
    CONTAINERS_GONE,
    copy_project,
    on_three_nodes,
    scrub,
)
from swarm_deploy import commands, profiles, usecases
from swarm_deploy.colour_steps import DRAIN_SLACK
from swarm_deploy.deploy_steps import WORKDIR
from swarm_deploy.engine import parse_time
from swarm_deploy.errors import DeployError
from swarm_deploy.naming import STACK_NAMESPACE, label
from swarm_deploy.pipeline import Project
from swarm_deploy.plan import Step
from swarm_deploy.render import colour_stack_file

ROOT = Path(__file__).resolve().parent.parent
APP, BRANCH, PORT = "gaiab", "develop", 18095
RELEASES = ("a", "b")
LOAD_ARGS = ("--new", "200", "--keepalive", "50", "50", "--stubborn", "50")
TESTBED_REGISTRY = "127.0.0.1:5000"
# seconds after each change, so that a change's failed requests fall in its own phase
SETTLE = 3.0
# seconds between two looks at the tasks of a Swarm update
POLL = 0.1
STARTED = time.monotonic()

OURS, REFUSED = "swarm-deploy", "refused release"
UPDATE, STACK = "service update start-first", "stack deploy (in place)"


@dataclass
class Recorder:
    """A swarm-deploy reporter that keeps each step's wall-clock begin and end."""

    steps: list[StepTime] = field(default_factory=list)
    began: float = 0.0

    def begin(self, number: int, total: int, step: Step) -> None:
        self.began = time.time()

    def end(self, step: Step, seconds: float, ok: bool) -> None:
        self.steps.append(StepTime(str(step.phase), step.title, self.began, time.time()))

    def skipped(self, number: int, total: int, step: Step) -> None:
        pass  # not run: no time of its own

    def status(self, text: str) -> None:
        pass

    def note(self, text: str) -> None:
        pass


@dataclass(frozen=True)
class Bed:
    """A Swarm the benchmark runs on: how swarm-deploy and docker reach its manager, its
    Engine API (to watch tasks), where the branch's nginx answers, and the two releases'
    images by digest (release: image name: reference)."""

    nodes: int
    project: Project
    host: str | None
    environ: dict[str, str] | None
    api: docker.APIClient
    address: str
    images: dict[str, dict[str, str]]

    @property
    def target(self) -> str:
        return self.project.config.target_for(self.host)

    def labels(self) -> dict[str, str]:
        """What swarm-deploy recorded about the branch: its edge service's labels."""
        edge = self.project.config.names(BRANCH).edge_service
        found: dict[str, str] = self.api.inspect_service(edge)["Spec"]["Labels"]
        return found

    def idle(self) -> str:
        """The release that is not live: what the next change deploys."""
        live = self.labels()[label("release")]
        return next(release for release in self.images if release != live)

    def live_stack(self) -> str:
        return self.project.config.names(BRANCH).colour_stack(self.labels()[label("live-colour")])

    def live_services(self) -> set[str]:
        """The IDs of the live colour's services (none before the branch's first deploy)."""
        try:
            stack = self.live_stack()
        except (docker.errors.NotFound, KeyError):
            return set()
        found = self.api.services(filters={"label": f"{STACK_NAMESPACE}={stack}"})
        return {service["ID"] for service in found}

    def other(self, image_name: str, ref: str) -> str:
        """The release whose image `image_name` is not `ref`."""
        digest = ref.rpartition("@")[2]
        return next(r for r, images in self.images.items() if digest not in images[image_name])


def say(text: str) -> None:
    """A line of progress, with the minutes and seconds since the benchmark started."""
    minutes, seconds = divmod(int(time.monotonic() - STARTED), 60)
    print(f"[{minutes:02d}:{seconds:02d}] {text}", flush=True)


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check)


def make_project(root: Path, crashing: bool = False, registry: str | None = None) -> Project:
    """A copy of the project for the benchmark's app; `crashing`: its backend exits at
    start; `registry`: the three-node Swarm's (its nodes pull from the bridge). Each copy
    renders into its own directory, so the crash never leaks into the others."""
    copy_project(ROOT, root)
    data = profiles.merged_data(ROOT / "swarm-deploy.local.yml")
    data["app"] = APP
    data["branches"] = [{"match": BRANCH, "port": PORT}]
    if crashing:
        data["services"]["backend"]["command"] = ["python3", "-c", "raise SystemExit(4)"]
    if registry:
        on_three_nodes(data)
    text = yaml.safe_dump(data, sort_keys=False)
    (root / "swarm-deploy.yml").write_text(
        text.replace(TESTBED_REGISTRY, registry) if registry else text
    )
    return Project.load(root / "swarm-deploy.yml")


def deploy(bed: Bed, release: str, project: Project | None = None) -> Change:
    """One swarm-deploy deploy of `release` by digest, each step timed."""
    recorder = Recorder()
    images = tuple(f"{name}={ref}" for name, ref in bed.images[release].items())
    request = usecases.DeployRequest(
        project or bed.project, BRANCH, release, bed.host, bed.environ, images=images,
        actor="bench",
    )  # fmt: skip
    old = bed.live_services()
    start = time.time()
    usecases.deploy(request, recorder)
    end, steps = time.time(), tuple(recorder.steps)
    removed = drain_done(bed.api, bed.project) and tasks_gone(bed.api, old)
    return Change(OURS, bed.nodes, release, start, end, switched(steps), steps, removed)


def drain_done(api: docker.APIClient, project: Project) -> float | None:
    """When the drain job the last deploy handed off was gone, having removed the old
    colour's services (None: it was still there after the drain and its slack)."""
    deadline = time.monotonic() + project.config.edge.drain + DRAIN_SLACK
    while api.services(filters={"label": label("drain-of")}):
        if time.monotonic() > deadline:
            return None
        time.sleep(POLL)
    return time.time()


def tasks_gone(api: docker.APIClient, services: set[str]) -> float | None:
    """When no task of `services` (IDs, removed) was left on the manager: their containers
    stopped and removed (None: some were still there after CONTAINERS_GONE). Waited for,
    so that each deploy is measured alone: Swarm stops a removed service's tasks 3 s
    later (the gossip delay of moby's executor), removes their containers after that,
    and the next deploy would share the machine with that work."""
    deadline = time.monotonic() + CONTAINERS_GONE
    while any(task["ServiceID"] in services for task in api.tasks()):
        if time.monotonic() > deadline:
            return None
        time.sleep(POLL)
    return time.time()


def publish(project: Project, api: docker.APIClient) -> dict[str, dict[str, str]]:
    """Both releases built and published by deploying each on the test bed's own Swarm;
    their images by digest, as the deploys recorded them."""
    images = {}
    edge = project.config.names(BRANCH).edge_service
    for release in RELEASES:
        usecases.deploy(usecases.DeployRequest(project, BRANCH, release, actor="bench"), Recorder())
        drain_done(api, project)
        labels = api.inspect_service(edge)["Spec"]["Labels"]
        prefix = label("image.")
        images[release] = {
            key.removeprefix(prefix): ref for key, ref in labels.items() if key.startswith(prefix)
        }
        say(f"release {release} built and published")
    return images


def crash_decision(bed: Bed) -> float:
    """Seconds from the crashing release's first failed task to the deployer's decision."""
    crashing = make_project(Path(tempfile.mkdtemp()), crashing=True)
    first_failure: list[float] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for service in bed.api.services():
                name = service["Spec"]["Name"]
                if name.startswith(f"{APP}-{BRANCH}-") and name.endswith("_backend"):
                    for task in bed.api.tasks(filters={"service": service["ID"]}):
                        if task["Status"]["State"] == "failed":
                            first_failure.append(
                                parse_time(task["Status"]["Timestamp"]).timestamp()
                            )
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        deploy(bed, bed.idle(), crashing)
        raise SystemExit("the crashing release was deployed: the benchmark is broken")
    except DeployError:
        decided = time.time()
    finally:
        stop.set()
        watcher.join()
    return decided - min(first_failure)


def watched(
    bed: Bed, strategy: str, label_: str, argv: list[str], wanted: dict[str, tuple[str, int]]
) -> Change:
    """A Swarm command run to its end, its tasks watched meanwhile for the moment the new
    release alone serves (`wanted`: service ID: the new image, its replicas)."""
    seen: list[float] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            tasks = bed.api.tasks(filters={"service": list(wanted)})
            if serves_only(tasks, wanted):
                seen.append(time.time())
                return
            time.sleep(POLL)

    watcher = threading.Thread(target=watch, daemon=True)
    start = time.time()
    watcher.start()
    result = subprocess.run(argv, env=bed.environ, capture_output=True, text=True, check=False)
    end = time.time()
    # converged as the command returns: the next look sees it
    watcher.join(timeout=30)
    done.set()
    watcher.join()
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {result.stderr or result.stdout}")
    return Change(strategy, bed.nodes, label_, start, end, seen[0] if seen else None)


def service_updates(bed: Bed, count: int) -> list[Change]:
    """`docker service update` start-first of the live backend to the other release's
    image, `count` times."""
    service = f"{bed.live_stack()}_backend"
    spec = bed.api.inspect_service(service)
    replicas = spec["Spec"]["Mode"]["Replicated"]["Replicas"]
    current = spec["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    changes = []
    for i in range(count):
        release = bed.other("backend", current)
        image = bed.images[release]["backend"]
        argv = commands.docker(
            bed.target, "service", "update", "--detach=false", "--quiet", "--image", image,
            "--update-order", "start-first", "--update-parallelism", "1",
            "--update-delay", "0s", "--no-resolve-image", service,
        )  # fmt: skip
        changes.append(
            watched(
                bed, UPDATE, f"backend {release} ({i + 1})", argv, {spec["ID"]: (image, replicas)}
            )
        )
        say(describe(changes[-1]))
        current = image
        time.sleep(SETTLE)
    return changes


def stack_deploys(bed: Bed, count: int, workdir: Path) -> list[Change]:
    """`docker stack deploy` of the live colour's rendered stack file with the other
    release's images, `count` times: Swarm's rolling update of every service in place."""
    stack = bed.live_stack()
    colour = stack.rsplit("-", 1)[1]
    slug = bed.project.config.names(BRANCH).slug
    rendered_file = bed.project.config.root / WORKDIR / slug / colour_stack_file(colour)
    rendered = yaml.safe_load(rendered_file.read_text())
    services = {
        s["Spec"]["Name"].removeprefix(f"{stack}_"): s
        for s in bed.api.services(filters={"label": f"com.docker.stack.namespace={stack}"})
    }
    replicas = {name: s["Spec"]["Mode"]["Replicated"]["Replicas"] for name, s in services.items()}
    current = services["backend"]["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    changes = []
    for i in range(count):
        release = bed.other("backend", current)
        changed = release_stack(rendered, bed.images[release], release, replicas)
        path = workdir / f"{stack}-{release}.yml"
        path.write_text(yaml.safe_dump(changed, sort_keys=False))
        argv = commands.docker(
            bed.target, "stack", "deploy", "--compose-file", str(path), "--with-registry-auth",
            "--resolve-image", "never", "--detach=false", "--quiet", stack,
        )  # fmt: skip
        wanted = {
            s["ID"]: (changed["services"][name]["image"], replicas[name])
            for name, s in services.items()
        }
        changes.append(watched(bed, STACK, f"release {release} ({i + 1})", argv, wanted))
        say(describe(changes[-1]))
        current = bed.images[release]["backend"]
        time.sleep(SETTLE)
    return changes


def nodes(count: int) -> str:
    return "1 node" if count == 1 else f"{count} nodes"


def describe(change: Change) -> str:
    live = "never live" if change.time_to_live is None else f"live {change.time_to_live:.1f}s"
    text = f"{change.strategy}, {nodes(change.nodes)}, {change.label}: {live}"
    text += f", total {change.total:.1f}s"
    if change.steps:
        phases = change.by_phase()
        text += " (" + ", ".join(f"{p} {s:.2f}" for p, s in phases.items()) + ")"
    return text


@dataclass
class Round:
    """What one Swarm's round saw, on the wall clock: the changes, when each phase
    began (the last mark ends the round), every request of the load."""

    nodes: int
    changes: list[Change] = field(default_factory=list)
    marks: dict[str, float] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    decision: float | None = None


def measure(bed: Bed, args: argparse.Namespace, workdir: Path) -> Round:
    """Load on, then each strategy in turn; the phases are marked as they begin."""
    run = Round(bed.nodes)
    samples_file = workdir / f"samples-{bed.nodes}.jsonl"
    load = subprocess.Popen(
        [sys.executable, "-m", "bench.load", "--url", f"http://{bed.address}:{PORT}/api/",
         *LOAD_ARGS, "--seconds", "3600", "--out", str(samples_file)],
        cwd=ROOT,
    )  # fmt: skip
    try:
        time.sleep(5)
        run.marks[OURS] = time.time()
        for _ in range(args.deploys):
            run.changes.append(deploy(bed, bed.idle()))
            say(describe(run.changes[-1]))
            time.sleep(SETTLE)
        if bed.nodes == 1:
            run.marks[REFUSED] = time.time()
            run.decision = crash_decision(bed)
            say(f"crashing release refused {run.decision:.1f}s after its first failed task")
            time.sleep(SETTLE)
        # stack deploys first: after a `service update --image`, a stack file naming the
        # image the stack last deployed leaves the updated image in place (the docker CLI
        # compares the file's image with its label of the last one, not with what runs)
        run.marks[STACK] = time.time()
        run.changes += stack_deploys(bed, args.stacks, workdir)
        run.marks[UPDATE] = time.time()
        run.changes += service_updates(bed, args.updates)
        time.sleep(5)
        run.marks["end"] = time.time()
    finally:
        load.send_signal(signal.SIGTERM)
        load.wait(timeout=120)
    run.samples = read(samples_file)
    return run


def one_node(args: argparse.Namespace, workdir: Path) -> tuple[Round | None, dict[str, Any]]:
    """The round on the test bed's own Swarm (when asked for), and the releases' images
    its first deploys published."""
    scrub(APP)
    client = docker.from_env()
    try:
        project = make_project(workdir / "one")
        images = publish(project, client.api)
        if 1 not in args.nodes:
            return None, images
        bed = Bed(1, project, None, None, client.api, "127.0.0.1", images)
        return measure(bed, args, workdir), images
    finally:
        scrub(APP)
        client.close()


@contextmanager
def cluster(bed_env: dict[str, str]) -> Iterator[tuple[dict[str, str], docker.APIClient]]:
    """The three-node Swarm, up; taken down after unless it was up before (then only
    the benchmark's app is removed). Its env and its manager's Engine API."""
    socket = f"unix://{bed_env['TESTBED_DIR']}/cluster/node1/docker.sock"
    was_up = sh("docker", "--host", socket, "info", check=False).returncode == 0
    say("three nodes: scripts/testbed-cluster up")
    up = subprocess.run([str(CLUSTER), "up"], capture_output=True, text=True, check=False)
    if up.returncode != 0:
        raise SystemExit(f"scripts/testbed-cluster up failed:\n{up.stderr}")
    api = docker.APIClient(base_url=socket)
    try:
        yield dict(line.split("=", 1) for line in up.stdout.splitlines() if "=" in line), api
    finally:
        if was_up:
            scrub(APP, api)
        api.close()
        if not was_up:
            say("three nodes: scripts/testbed-cluster down")
            sh(str(CLUSTER), "down")


def three_nodes(
    args: argparse.Namespace, workdir: Path, bed_env: dict[str, str], images: dict[str, Any]
) -> Round:
    with cluster(bed_env) as (env, api):
        registry = env["CLUSTER_REGISTRY"]
        project = make_project(workdir / "three", registry=registry)
        bridged = {
            release: {name: ref.replace(TESTBED_REGISTRY, registry) for name, ref in refs.items()}
            for release, refs in images.items()
        }
        environ = {**os.environ, "DOCKER_CONFIG": bed_env["DEPLOYER_DOCKER_CONFIG"]}
        bed = Bed(3, project, env["CLUSTER_TARGET"], environ, api, CLUSTER_EDGE, bridged)
        for release in RELEASES:
            say(f"three nodes: first deploy of {release}")
            deploy(bed, release)
        return measure(bed, args, workdir)


# --- figures


def stats(samples: list[Sample]) -> dict[str, dict[str, Any]]:
    return {
        s.kind: {"requests": s.requests, "failed": s.failed, "retried": s.retried,
                 "p50_ms": s.p50_ms, "p99_ms": s.p99_ms}
        for s in summarize(samples)
    }  # fmt: skip


def phases(run: Round) -> dict[str, tuple[float, float]]:
    marks = itertools.pairwise(run.marks.items())
    return {name: (begin, end) for (name, begin), (_, end) in marks}


def strategy_figures(run: Round, strategy: str, phase: tuple[float, float]) -> dict[str, Any]:
    """Failures over the whole phase (a change's damage can outlast it: nginx's DNS cache,
    connections to tasks that are gone), latency inside the changes' windows."""
    mine = [c for c in run.changes if c.strategy == strategy]
    in_phase = [s for s in run.samples if phase[0] <= s.t < phase[1]]
    windows = [c.window for c in mine]
    in_windows = [s for s in in_phase if any(a <= s.t <= b for a, b in windows)]
    return {
        "changes": len(mine),
        "phase": stats(in_phase),
        "windows": stats(in_windows),
        "time_to_live_s": [round(c.time_to_live, 2) for c in mine if c.time_to_live is not None],
        "never_live": sum(c.time_to_live is None for c in mine),
        "total_s": [round(c.total, 2) for c in mine],
        "removed_s": [round(c.until_removed, 2) for c in mine if c.until_removed is not None],
    }


def round_figures(run: Round) -> dict[str, Any]:
    ours = [c for c in run.changes if c.strategy == OURS]
    by_phase = phases(run)
    quiet = [
        s
        for s in run.samples
        if by_phase[OURS][0] <= s.t < by_phase[OURS][1]
        and not any(c.window[0] - 2 <= s.t <= c.window[1] + 2 for c in ours)
    ]
    return {
        "nodes": run.nodes,
        "strategies": {name: strategy_figures(run, name, span) for name, span in by_phase.items()},
        "shares": [asdict(s) for s in shares(ours)],
        "steady": stats(quiet),
        "crash_decision_s": None if run.decision is None else round(run.decision, 1),
        "phases": by_phase,
        "changes": [asdict(c) for c in run.changes],
    }


def plot(runs: list[Round], path: Path) -> None:
    # only the benchmark needs matplotlib (bench/requirements.txt), and without a display
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, axes = plt.subplots(len(runs), 1, figsize=(14, 5 * len(runs)), dpi=80, squeeze=False)
    colours = {"new": "#1f77b4", "keepalive": "#2ca02c", "stubborn": "#9467bd"}
    shades = {OURS: "#2ca02c", UPDATE: "#ff7f0e", STACK: "#d62728"}
    for ax, run in zip(axes[:, 0], runs, strict=True):
        t0 = min(s.t for s in run.samples)
        for kind, colour in colours.items():
            ok = [(s.t - t0, s.ms) for s in run.samples if s.kind == kind and not s.failed]
            if ok:
                ax.scatter(*zip(*ok, strict=True), s=1, alpha=0.35, color=colour, label=kind)
        failed = [(s.t - t0, max(s.ms, 0.5)) for s in run.samples if s.failed]
        if failed:
            ax.scatter(*zip(*failed, strict=True), s=18, marker="x", color="red", label="failed")
        seen = set()
        for change in run.changes:
            if change.strategy not in shades:
                continue
            ax.axvspan(
                change.window[0] - t0,
                change.window[1] - t0,
                color=shades[change.strategy],
                alpha=0.15,
                label=None if change.strategy in seen else change.strategy,
            )
            seen.add(change.strategy)
            if change.live is not None:
                ax.axvline(change.live - t0, color="black", linewidth=0.6)
        ax.set_yscale("log")
        ax.set_xlabel("seconds")
        ax.set_ylabel("latency (ms, log)")
        ax.set_title(
            f"{nodes(run.nodes)}: latency and failures through the branch's nginx "
            "(black: each change live)"
        )
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


def user_failures(phase: dict[str, Any]) -> int:
    """What users see: failed requests of new connections and of keep-alive clients that
    retry as browsers do."""
    return sum(phase.get(kind, {}).get("failed", 0) for kind in ("new", "keepalive"))


def headline(figures: dict[str, Any]) -> tuple[float | None, float | None, float]:
    """A strategy's median time to live and total, and its users' failed requests per change."""
    live, total = Spread.of(figures["time_to_live_s"]), Spread.of(figures["total_s"])
    return (
        live.median if live else None,
        total.median if total else None,
        round(user_failures(figures["phase"]) / max(figures["changes"], 1), 1),
    )


def spread(values: list[float]) -> str:
    found = Spread.of(values)
    return str(found) if found else "-"


def report(results: dict[str, Any], out: Path, name: str) -> str:
    rounds = results["rounds"]
    lines = [
        "# Benchmarks",
        "",
        f"Measured {results['date']} by `make bench` (bench/run.py, {results['minutes']:.0f} "
        f"minutes) on the test bed: {results['machine']}; code at {results['commit']}.",
        f"Load through the branch's nginx: {results['load']}. One run: ratios hold,",
        "absolute figures move with the machine (these are shared, noisy machines).",
        "",
        "A changed release with its images published already: two releases are built and",
        "pushed once, then each change deploys the other one by digest (`deploy --image`).",
        "",
        "- **Time to live**: from the command's start until no new request can reach the old",
        "  release. swarm-deploy: the end of its `switch` step (nginx sends to the new colour",
        "  only, checked through the public route). Swarm's tools: the first look (every",
        f"  {POLL:g} s) at the manager's tasks that shows every task of the changed services",
        "  running the new image and none of the old one running.",
        "- **Total**: until the command returns: swarm-deploy once the release is live and",
        "  recorded (the drain job it hands off removes the old colour after `edge.drain`;",
        "  each deploy here starts once the old colour's tasks are gone from the manager,",
        "  which Swarm stops 3 s after their services' removal: the last row of the phase",
        '  table, "old colour removed");',
        "  Swarm's tools (`--detach=false`) after the update's monitor period.",
        "- **Failed requests** are counted over each strategy's whole phase (its changes and",
        f"  {SETTLE:g} s after each), by kind of client; latency is that of new-connection",
        "  requests inside the change windows (swarm-deploy: from its switch to its return;",
        "  Swarm's tools: the whole command).",
        "- `service update` changes the backend only (one service: less than a release);",
        "  `stack deploy` changes every service of the live colour, as swarm-deploy does.",
        "  Both reach the manager as swarm-deploy does (`docker --host` the same target).",
        "",
        "## Time to live",
        "",
        "| strategy | nodes | changes | time to live (s), median / max | total (s), median / max "
        "| failed: new connection | failed: keep-alive, retrying "
        "| failed: keep-alive, never retrying | p50 / p99 ms in the windows |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for found in rounds:
        for strategy, figures in found["strategies"].items():
            if strategy == REFUSED:
                continue
            phase, windows = figures["phase"], figures["windows"].get("new", {})
            never = f" ({figures['never_live']} never live)" if figures["never_live"] else ""
            lines.append(
                f"| {strategy} | {found['nodes']} | {figures['changes']} "
                f"| {spread(figures['time_to_live_s'])}{never} | {spread(figures['total_s'])} "
                f"| {failed_of(phase.get('new'))} | {failed_of(phase.get('keepalive'))} "
                f"| {failed_of(phase.get('stubborn'))} "
                f"| {windows.get('p50_ms', '-')} / {windows.get('p99_ms', '-')} |"
            )
    lines += [
        "",
        "Against swarm-deploy on the same Swarm (medians; failed requests: new connections",
        "and retrying keep-alive clients, per change):",
        "",
        "| strategy | nodes | time to live | total | failed requests per change |",
        "| --- | --- | --- | --- | --- |",
    ]
    for found in rounds:
        ours = headline(found["strategies"][OURS])
        for strategy in (STACK, UPDATE):
            theirs = headline(found["strategies"][strategy])
            cells = [ratio(mine, base) for mine, base in zip(theirs, ours, strict=True)]
            lines.append(f"| {strategy} | {found['nodes']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Where a swarm-deploy deploy spends its time",
        "",
        "Each phase's steps summed per deploy; the median over the deploys of its seconds and",
        "of its percentage of that deploy's total (a phase that did not run counts 0; `ran`:",
        f"in how many deploys it ran). `{BEFORE}`: the lock, reading the facts, the plan;",
        f"`{AFTER}`: releasing the lock.",
        "",
        "| phase | " + " | ".join(f"{nodes(r['nodes'])}: s | % | ran" for r in rounds) + " |",
        "| --- | " + " | ".join("--- | --- | ---" for _ in rounds) + " |",
    ]
    by_round = [{s["phase"]: s for s in r["shares"]} for r in rounds]
    for phase in dict.fromkeys(p for shares_ in by_round for p in shares_):
        cells = []
        for shares_, found in zip(by_round, rounds, strict=True):
            share = shares_.get(phase)
            count = found["strategies"][OURS]["changes"]
            cells.append(
                f"{share['seconds']:.2f} | {share['percent']:.0f} % | {share['ran']} of {count}"
                if share
                else "- | - | -"
            )
        lines.append(f"| {phase} | " + " | ".join(cells) + " |")
    for what, key in (
        ("time to live", "time_to_live_s"),
        ("total", "total_s"),
        ("old colour removed", "removed_s"),
    ):
        cells = [spread(r["strategies"][OURS][key]) + " (median / max) | |" for r in rounds]
        lines.append(f"| **{what}** | " + " | ".join(cells) + " |")
    lines += ["", "## Notes", ""]
    for found in rounds:
        steady = found["steady"].get("new", {})
        lines.append(
            f"- {nodes(found['nodes'])}, steady state (the swarm-deploy phase away from its "
            f"switches), new connections: p50 {steady.get('p50_ms')} ms, p99 "
            f"{steady.get('p99_ms')} ms, {failed_of(steady or None)} failed."
        )
        if found["crash_decision_s"] is not None:
            refused = found["strategies"][REFUSED]["phase"].get("new")
            lines.append(
                f"- {nodes(found['nodes'])}, a release whose backend exits at start: refused "
                f"{found['crash_decision_s']:.1f} s after its first failed task (the gate's "
                f"timeout is 120 s); requests failed meanwhile: {failed_of(refused)} "
                "(new connections)."
            )
    lines += [
        "- swarm-deploy's switch reloads nothing (it renames a file nginx tests on every",
        "  request), so no connection is closed; an nginx restarted or reloaded closes idle",
        "  keep-alive connections, and a client that never retries loses its next request.",
        "- Swarm's updates lose requests while nginx's resolver (names valid 5 s) still sends",
        "  to tasks that are gone; swarm-deploy's drain waits that out before removing them.",
        "- The stack deploys run before the service updates: after `docker service update",
        "  --image`, a stack file naming the image the stack last deployed leaves the updated",
        "  image in place (the docker CLI compares the file's image with its own label).",
        "",
        f"![latency and failures over time]({name}.png)",
        "",
    ]
    text = "\n".join(lines)
    (out / f"{name}.md").write_text(text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--deploys", type=int, default=10, help="swarm-deploy deploys per Swarm")
    parser.add_argument("--updates", type=int, default=3, help="service updates per Swarm")
    parser.add_argument("--stacks", type=int, default=3, help="stack deploys per Swarm")
    parser.add_argument("--nodes", type=int, nargs="+", choices=(1, 3), default=[1, 3])
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument("--name", default="benchmarks", help="the written files' name")
    args = parser.parse_args()
    up = sh(str(ROOT / "scripts" / "testbed"), "up")
    bed_env = dict(line.split("=", 1) for line in up.stdout.splitlines() if "=" in line)
    workdir = Path(tempfile.mkdtemp(prefix="swarm-deploy-bench-"))
    one, images = one_node(args, workdir)
    runs = [one] if one else []
    if 3 in args.nodes:
        runs.append(three_nodes(args, workdir, bed_env, images))
    say("benchmark done")
    commit = sh("git", "-C", str(ROOT), "describe", "--always", "--dirty").stdout.strip()
    results = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "commit": commit,
        "minutes": round((time.monotonic() - STARTED) / 60, 1),
        "load": f"{' '.join(LOAD_ARGS)} (req/s; bench/load.py)",
        "rounds": [round_figures(run) for run in runs],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    plot(runs, args.out / f"{args.name}.png")
    samples = workdir / "samples.jsonl.gz"
    with gzip.open(samples, "wt") as raw:
        raw.writelines(
            json.dumps({"nodes": run.nodes, **asdict(s)}) + "\n"
            for run in runs
            for s in run.samples
        )
    (args.out / f"{args.name}.json").write_text(json.dumps(results, indent=2) + "\n")
    say(f"every request: {samples}")
    print(report(results, args.out, args.name))


if __name__ == "__main__":
    main()
