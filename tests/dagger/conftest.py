"""An offline stand-in for the Dagger engine, so the module's own machinery can be tested.

No Dagger engine can run here. The SDK builds every query lazily and sends it in
`Context.execute`; this fixture replaces that one method. It answers `contents` and
`exists` of a file from the local checkout (the `source` directory) and an ID for `id`, and it
records every query as nested data, so tests can read exactly what would be sent.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

# The SDK reads the main object's name from the environment when it is imported.
os.environ.setdefault("DAGGER_MAIN_OBJECT", "SwarmDeploy")

from dagger.client._core import Context
from dagger.client.base import Type

from tests.conftest import ROOT

SOURCE_ID = "source-directory-id"
# every function the module registers ("": its constructor)
FUNCTIONS = frozenset({
    "", "plan", "plan_on_target", "render", "build", "publish", "deploy", "rollback",
    "destroy", "unlock", "status", "doctor", "unit_tests",
})  # fmt: skip


def query(ctx: Context) -> list[dict[str, Any]]:
    """A lazy query as data: [{type, field, args}], object arguments expanded the same way."""
    return [
        {"type": f.type_name, "field": f.name, "args": {k: expand(v) for k, v in f.args.items()}}
        for f in ctx.selections
    ]


def expand(value: Any) -> Any:
    if isinstance(value, Type):
        return query(value._ctx)
    if isinstance(value, list):
        return [expand(v) for v in value]
    if isinstance(value, dict):
        return {k: expand(v) for k, v in value.items()}
    return value


def content_digest(directory: Path) -> str:
    """What `Directory.digest` stands for: a hash of the directory's files."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(directory)}\0".encode() + path.read_bytes())
    return f"sha256:{digest.hexdigest()}"


class OfflineEngine:
    def __init__(self) -> None:
        self.sent: list[list[dict[str, Any]]] = []
        # `digest` answers by directory path, instead of the checkout's content
        self.digests: dict[str, str] = {}

    async def execute(self, ctx: Context, return_type: Any = None) -> Any:
        sent = query(ctx)
        self.sent.append(sent)
        fields = [step["field"] for step in sent]
        if fields[-2:] == ["file", "contents"] and sent[0]["args"].get("id") == SOURCE_ID:
            return (ROOT / sent[-2]["args"]["path"]).read_text()
        if fields[-1] == "exists" and sent[0]["args"].get("id") == SOURCE_ID:
            return (ROOT / sent[-1]["args"]["path"]).is_file()
        if fields[-2:] == ["directory", "digest"] and sent[0]["args"].get("id") == SOURCE_ID:
            path = sent[-2]["args"]["path"]
            return self.digests.get(path) or content_digest(ROOT / path)
        if fields[-1] == "id":
            return f"offline-id-{len(self.sent)}"
        if fields[-1] == "publish":
            return f"{sent[-1]['args']['address']}@sha256:{'ab' * 32}"
        if fields[-1] == "stdout":
            return "offline stdout\n"
        if fields[-1] == "stderr":
            return "offline stderr\n"
        raise AssertionError(f"the offline engine cannot answer {fields}")


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> OfflineEngine:
    offline = OfflineEngine()

    async def execute(self: Context, return_type: Any = None) -> Any:
        return await offline.execute(self, return_type)

    monkeypatch.setattr(Context, "execute", execute)
    return offline
