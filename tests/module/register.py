"""Run by the environment the runtime installed: find the main object the way the runtime's
entrypoint does (`dagger.mod.cli.load_module`, through the `dagger.mod` entry point),
register it with the SDK's own `Module.register`, and print what it registered as JSON.

No engine answers here: `Context.execute` returns an ID for every query it is sent, and
records the names of the functions and their arguments as they are registered.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import anyio
from dagger.client._core import Context
from dagger.mod.cli import load_module

registered: dict[str, list[str]] = {}


def arguments(value: Any) -> None:
    """Record each `Function` built in a query: its name and its `withArg` names."""
    if not isinstance(value, list):
        return
    for selection in filter(lambda item: isinstance(item, dict), value):
        field, args = selection["field"], selection["args"]
        if field == "function":
            current = registered.setdefault(args["name"], [])
        elif field == "withArg":
            current.append(args["name"])
        for arg in args.values():
            arguments(arg)


def expand(ctx: Context) -> list[dict[str, Any]]:
    return [
        {"field": f.name, "args": {k: nested(v) for k, v in f.args.items()}} for f in ctx.selections
    ]


def nested(value: Any) -> Any:
    if hasattr(value, "_ctx"):
        return expand(value._ctx)
    if isinstance(value, list):
        return [nested(v) for v in value]
    return value


async def execute(self: Context, return_type: Any = None) -> Any:
    arguments(expand(self))
    return "offline-id"


async def main() -> None:
    Context.execute = execute  # type: ignore[method-assign]
    module = load_module()
    await module.register()


anyio.run(main)
json.dump(registered, sys.stdout)
