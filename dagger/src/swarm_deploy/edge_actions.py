"""The actions a deploy performs inside the branch's nginx: the health gate's loop (its
pure rules are gate.py's), the switch and its verification, and rewriting live/colour.conf.

The deployer (deploy.py) dispatches its HealthGate, Switch and RewriteLive actions here and
decides, when a deploy stops, what happened; these only act and report what they saw.
"""

from __future__ import annotations

import re

from swarm_deploy import commands, gate, interrupts
from swarm_deploy.edge import (
    COLOUR_HEADER,
    LIVE_FILE,
    PREVIEW,
    PUBLIC,
    EdgeTask,
    edge_task,
    edge_tasks,
    live_line,
)
from swarm_deploy.errors import DeployError, GateError, SwarmDeployError
from swarm_deploy.plan import HealthGate, RewriteLive, Switch
from swarm_deploy.runner import Runner


class EdgeRunner(Runner):
    """A runner that also acts in a branch's nginx: gate, switch, live/colour.conf."""

    def health_gate(self, action: HealthGate, stack: str) -> None:
        """(a) the new colour's tasks run (and are healthy), (b) from then on its health paths
        answer 200 N times in a row through nginx. Failed probes are forgiven for the start
        grace; after it, N failed in a row end the gate, as a failed task does at any time."""
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
            self.clock.sleep(rule.interval)

    def switch(self, action: Switch) -> None:
        """In each nginx task in turn: write live/colour.conf, nginx -t, reload, verify.
        When one fails, every task it reached gets its previous file back and is reloaded
        before the error goes on: no task is left on another colour than the others."""
        edges = edge_tasks(self.swarm, action.edge_service)
        # read before any is written: tasks on one node share the file
        previous = {edge.name: self._exec(edge, "cat", LIVE_FILE) for edge in edges}
        reached: list[EdgeTask] = []
        for edge in edges:
            reached.append(edge)
            self.write_live(edge, live_line(action.colour))
            interrupts.point("switch:written")
            try:
                self.executor.run(commands.exec_in(edge.target, edge.container, "nginx", "-t"))
                self.reload(edge)
                interrupts.point("switch:reloaded")
                self._verify_switch(edge, action)
            except SwarmDeployError as exc:
                self.reporter.note("switch failed: putting the previous colour back")
                for switched in reversed(reached):
                    self.write_live(switched, previous[switched.name])
                    self.reload(switched, check=False)
                if len(reached) == 1:
                    raise
                done = ", ".join(e.name for e in reached[:-1])
                raise DeployError(
                    f"the switch to {action.colour} failed in nginx task {edge.name} after it "
                    f"had succeeded in {done}, which got its previous colour back:\n{exc}"
                ) from exc

    def rewrite_live(self, action: RewriteLive) -> None:
        colour = None if action.colour == "none" else action.colour
        for edge in edge_tasks(self.swarm, action.edge_service):
            self.write_live(edge, live_line(colour))
            self.reload(edge)

    def write_live(self, edge: EdgeTask, content: str) -> None:
        self.executor.run(
            commands.exec_in(edge.target, edge.container, "tee", LIVE_FILE, stdin=True),
            stdin=content.encode(),
        )

    def reload(self, edge: EdgeTask, check: bool = True) -> None:
        """nginx -s reload: graceful, requests in flight finish on the old workers."""
        self.executor.run(
            commands.exec_in(edge.target, edge.container, "nginx", "-s", "reload"), check=check
        )

    def _exec(self, edge: EdgeTask, *argv: str) -> str:
        """What a command in the edge's nginx container prints; "" when it fails."""
        result = self.executor.run(
            commands.exec_in(edge.target, edge.container, *argv), check=False
        )
        return result.stdout if result.returncode == 0 else ""

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

    def _verify_switch(self, edge: EdgeTask, action: Switch) -> None:
        """New requests through the public route must reach the new colour."""
        deadline = self.clock.now() + 15
        while True:
            seen = {}
            for path in action.paths:
                headers = self._exec(
                    edge, "curl", "-s", "-o", "/dev/null", "-D", "-", "--max-time", "5",
                    PUBLIC + path,
                )  # fmt: skip
                found = re.search(rf"^{COLOUR_HEADER}: (\S+)", headers, re.I | re.M)
                seen[path] = found.group(1) if found else "no colour header"
            if all(colour == action.colour for colour in seen.values()):
                return
            if self.clock.now() >= deadline:
                shown = ", ".join(f"{p} -> {c}" for p, c in seen.items())
                raise DeployError(
                    f"after the switch to {action.colour}, the public route gave {shown}"
                )
            self.clock.sleep(0.5)
