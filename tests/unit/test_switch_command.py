"""The switch as one command in each nginx task: its argv, and what keeps a signal from
cutting it off (the deployer holds the signal; a terminal's Ctrl-C does not reach the
command). What the script does is tested with a real nginx: tests/tools/test_live_script.py.
"""

from __future__ import annotations

import os
import signal
import sys
from contextlib import nullcontext
from pathlib import Path

import pytest

from swarm_deploy import commands, interrupts
from swarm_deploy.engine import Executor


def test_a_switch_is_one_docker_exec_of_the_script_with_its_arguments_in_order() -> None:
    argv = commands.switch_live(
        "ssh://deploy@10.0.0.2:2222", "c0ffee", "/etc/nginx/live", "green",
        wait=15, route="http://127.0.0.1", header="X-Swarm-Deploy-Colour",
        paths=("/api/health", "/health"),
    )  # fmt: skip
    assert argv == [
        "docker", "--host", "ssh://deploy@10.0.0.2:2222", "exec", "c0ffee",
        "sh", "-c", commands.LIVE_SCRIPT, "sh",
        "/etc/nginx/live", "green", "15",
        "http://127.0.0.1", "X-Swarm-Deploy-Colour", "/api/health", "/health",
    ]  # fmt: skip


def test_a_rewrite_is_the_same_script_with_live_and_the_colour_alone() -> None:
    argv = commands.write_live("local", "c0ffee", "/etc/nginx/live", None)
    assert argv == [
        "docker", "exec", "c0ffee", "sh", "-c", commands.LIVE_SCRIPT, "sh", "/etc/nginx/live", "",
    ]  # fmt: skip


def signalled(*names: str, held: bool = True) -> tuple[list[str], list[str]]:
    """Each signal sent to this process in turn, inside a held block (or not), under the
    deploy's handlers; then one more after the block. What ran after each signal, and
    what was raised (class and message)."""
    ran: list[str] = []
    raised: list[str] = []
    with interrupts.as_exceptions():
        try:
            with interrupts.held() if held else nullcontext():
                for name in names:
                    os.kill(os.getpid(), getattr(signal, name))
                    ran.append(name)
        except (interrupts.Interrupted, interrupts.Aborted) as exc:
            raised.append(f"{type(exc).__name__}: {exc}")
        try:
            os.kill(os.getpid(), signal.SIGINT)
        except (interrupts.Interrupted, interrupts.Aborted) as exc:
            raised.append(f"{type(exc).__name__}: {exc}")
    return ran, raised


def test_a_signal_while_held_is_raised_once_the_block_ends() -> None:
    assert signalled("SIGTERM") == (
        ["SIGTERM"],
        # the next signal is a second one: it cuts the clean-up short
        ["Interrupted: SIGTERM", "Aborted: SIGINT after SIGTERM: the clean-up was cut short"],
    )


def test_a_second_signal_is_not_held() -> None:
    assert signalled("SIGTERM", "SIGHUP") == (
        ["SIGTERM"],
        [
            "Aborted: SIGHUP after SIGTERM: the clean-up was cut short",
            "Aborted: SIGINT after SIGTERM: the clean-up was cut short",
        ],
    )


def test_outside_a_held_block_a_signal_is_raised_at_once() -> None:
    assert signalled("SIGTERM", held=False) == (
        [],
        ["Interrupted: SIGTERM", "Aborted: SIGINT after SIGTERM: the clean-up was cut short"],
    )


@pytest.mark.parametrize("shielded", [True, False])
def test_a_shielded_command_runs_in_a_process_group_of_its_own(
    tmp_path: Path, shielded: bool
) -> None:
    """A terminal's Ctrl-C goes to its foreground process group: the deployer's, which
    holds it, and not the shielded command's."""
    script = "import os; print(os.getpgid(0), os.getpid())"
    result = Executor(tmp_path).run([sys.executable, "-c", script], shielded=shielded)
    group, pid = result.stdout.split()
    assert (group == pid) is shielded
    assert (group == str(os.getpgid(0))) is not shielded
