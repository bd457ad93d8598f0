"""The actions a deploy performs inside the branch's nginx: the health gate's loop (its
pure rules are gate.py's), the switch and its verification, and naming the live colour.

The deployer (deploy.py) dispatches its HealthGate, Switch and RewriteLive actions here and
decides, when a deploy stops, what happened; these only act and report what they saw.
"""

from __future__ import annotations

import shlex

from swarm_deploy import commands, gate, interrupts
from swarm_deploy.edge import (
    COLOUR_HEADER,
    PREVIEW,
    PUBLIC,
    EdgeTask,
    edge_task,
    edge_tasks,
)
from swarm_deploy.engine import Result
from swarm_deploy.errors import CommandError, DeployError, GateError, SwarmDeployError
from swarm_deploy.naming import LIVE_DIR
from swarm_deploy.plan import HealthGate, RewriteLive, Switch
from swarm_deploy.runner import Runner

# how long a switch may take, once the colour is named, to serve it on every path
SWITCH_WAIT = 15


class EdgeRunner(Runner):
    """A runner that also acts in a branch's nginx: gate, switch, the live colour."""

    def health_gate(self, action: HealthGate, stack: str) -> None:
        """(a) the new colour's tasks run (and are healthy), (b) from then on its health paths
        answer 200 N times in a row through nginx, a round of probes starting every
        gate.interval. Failed probes are forgiven for the start grace; after it, N failed in
        a row end the gate, as a failed task does at any time."""
        rule = action.gate
        deadline = self.clock.now() + rule.timeout
        verdict = gate.poll(
            lambda: self.look_at(stack),
            rule.timeout,
            clock=self.clock,
            on_status=self.reporter.status,
        )
        if verdict.failure:
            raise GateError(f"gate for {action.colour}: {verdict.failure}")
        if not verdict.done:
            raise GateError(
                f"gate for {action.colour}: not every task running and healthy within "
                f"{rule.timeout:g}s: {verdict.status}"
            )
        forgiven_until = self.clock.now() + rule.start_grace
        count = gate.HealthCount(action.paths, rule.consecutive)
        while True:
            began = self.clock.now()
            verdict = self.look_at(stack)
            if verdict.failure:
                raise GateError(f"gate for {action.colour}: {verdict.failure}")
            edge = edge_task(self.swarm, action.edge_service)
            urls = [PREVIEW + path for path in action.paths]
            answers = self._http_statuses(edge, urls, action.colour)
            for path, answer in zip(action.paths, answers, strict=True):
                count.record(path, answer)
            self.reporter.status(count.status())
            if count.passed:
                return
            now = self.clock.now()
            refused = count.refused and now >= forgiven_until
            if refused or now >= deadline:
                why = (
                    f", {rule.consecutive} failed in a row after the {rule.start_grace:g}s "
                    "start grace"
                    if refused
                    else f" within {rule.timeout:g}s"
                )
                raise GateError(
                    f"gate for {action.colour}: no {rule.consecutive} consecutive 200s through "
                    f"the preview route{why}: {count.status()}"
                )
            self.clock.sleep_rest(began, rule.interval)

    def switch(self, action: Switch) -> None:
        """In each nginx task in turn, one command (commands.LIVE_SCRIPT): name the colour
        in live/, verify through the public route; a task where it fails names its previous
        colour again. Then every task reached before gets its previous colour back before
        the error goes on: no task is left on another colour."""
        # the colour each node named before the switch: tasks on one node share live/, so
        # a later task there finds what an earlier one named
        before: dict[str, str] = {}
        reached: list[EdgeTask] = []
        for edge in edge_tasks(self.swarm, action.edge_service):
            reached.append(edge)
            argv = commands.switch_live(
                edge.target, edge.container, LIVE_DIR, action.colour,
                wait=SWITCH_WAIT, route=PUBLIC, header=COLOUR_HEADER, paths=action.paths,
            )  # fmt: skip
            # a signal waits for the verdict: nginx must not be left switching unwatched
            # while the deployer decides what it serves
            with interrupts.held():
                interrupts.point("switch:running")
                # the wait twice (a failed switch waits for the colour to go), curl's 5 s a
                # path and the script's own commands
                result = self.executor.run(
                    argv, check=False, timeout=2 * SWITCH_WAIT + 60, shielded=True
                )
            ran = result.returncode in (0, commands.LIVE_FAILED)
            if ran:
                before.setdefault(edge.target, result.stdout)
            if result.returncode == 0:
                interrupts.point("switch:verified")
                continue
            self.reporter.note("switch failed: putting the previous colour back")
            # the failed task named again what it found, which is what its node had before
            # unless an earlier task on that node had named the new colour
            put_back = ran and result.stdout == before[edge.target]
            for switched in reversed(reached if not put_back else reached[:-1]):
                if switched.target in before:
                    self.write_live(switched, before[switched.target] or None)
            exc = _failure(argv, result)
            if len(reached) == 1:
                raise exc
            done = ", ".join(e.name for e in reached[:-1])
            raise DeployError(
                f"the switch to {action.colour} failed in nginx task {edge.name} after it "
                f"had succeeded in {done}, which got its previous colour back:\n{exc}"
            ) from exc

    def rewrite_live(self, action: RewriteLive) -> None:
        colour = None if action.colour == "none" else action.colour
        for edge in edge_tasks(self.swarm, action.edge_service):
            failure = self.write_live(edge, colour)
            if failure is not None:
                raise failure

    def write_live(self, edge: EdgeTask, colour: str | None) -> SwarmDeployError | None:
        """`colour` (None: none) named in the task's live/, in one command; nginx answers
        from it on the next request. Why that failed, if it did."""
        argv = commands.write_live(edge.target, edge.container, LIVE_DIR, colour)
        result = self.executor.run(argv, check=False)
        return None if result.returncode == 0 else _failure(argv, result)

    def _http_statuses(self, edge: EdgeTask, urls: list[str], colour: str) -> list[str]:
        """The status of each URL (in order) through one curl in the edge: one round trip a
        probe of every path; "no answer" where curl got none."""
        fetches = [part for url in urls for part in ("-o", "/dev/null", url)]
        argv = commands.exec_in(
            edge.target, edge.container, "curl", "-s", "-w", "%{http_code}\\n",
            "--max-time", "5", "-H", f"{COLOUR_HEADER}: {colour}", *fetches,
        )  # fmt: skip
        # curl's exit code is its last transfer's: each transfer's code is what it printed
        printed = self.executor.run(argv, check=False).stdout.split()
        codes = printed if len(printed) == len(urls) else ["000"] * len(urls)
        return ["no answer" if code == "000" else code for code in codes]


def _failure(argv: list[str], result: Result) -> SwarmDeployError:
    """Why commands.LIVE_SCRIPT failed: its own reason, or docker's when it did not run."""
    if result.returncode == commands.LIVE_FAILED:
        return DeployError(result.stderr.strip())
    shown = shlex.join(argv[: argv.index(commands.LIVE_SCRIPT)]) + " <commands.LIVE_SCRIPT>"
    return CommandError(shown, result.returncode, result.stderr)
