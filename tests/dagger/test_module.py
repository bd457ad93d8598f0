"""The Dagger module, registered and called through the SDK's own machinery, offline.

A broken signature, an argument without a description or a type the SDK cannot
register fails here, as it would fail `dagger call` for a user.
"""

from __future__ import annotations

from typing import Any

import anyio
import yaml

from swarm_deploy import pipeline
from swarm_deploy.main import SwarmDeploy
from tests.conftest import EXAMPLE_CONFIG
from tests.dagger.conftest import SOURCE_ID, OfflineEngine, query

MODULE = SwarmDeploy.__dagger_module__


def registration(engine: OfflineEngine) -> list[dict[str, Any]]:
    assert anyio.run(MODULE._typedefs) is not None
    return engine.sent[-1]


def select(sent: list[dict[str, Any]], field: str) -> list[dict[str, Any]]:
    return [step for step in sent if step["field"] == field]


def functions(engine: OfflineEngine) -> dict[str, list[dict[str, Any]]]:
    (module_object,) = select(registration(engine), "withObject")
    object_def = module_object["args"]["object"]
    found = {}
    for step in select(object_def, "withFunction") + select(object_def, "withConstructor"):
        function_query = step["args"]["function"]
        found[function_query[0]["args"]["name"]] = function_query
    return found


def test_every_function_and_argument_is_registered_with_a_description(
    engine: OfflineEngine,
) -> None:
    registered = functions(engine)
    assert {"plan", "render", ""} <= set(registered)  # "" is the constructor
    for name, function_query in registered.items():
        if name:
            (description,) = select(function_query, "withDescription")
            text = description["args"]["description"]
            assert text, f"{name} has no docstring"
            assert "\n" not in text, f"{name}: the docstring should be one line"
        for arg in select(function_query, "withArg"):
            assert arg["args"]["description"], f"{name}({arg['args']['name']}) has no Doc"


def test_the_source_directory_defaults_to_the_project_without_caches(engine: OfflineEngine) -> None:
    (source,) = select(functions(engine)[""], "withArg")
    assert source["args"]["name"] == "source"
    assert source["args"]["defaultPath"] == "/"
    assert ".git" in source["args"]["ignore"]
    assert "**/__pycache__" in source["args"]["ignore"]


def test_plan_through_get_result_matches_the_cli_plan(engine: OfflineEngine) -> None:
    text = anyio.run(
        MODULE.get_result,
        "SwarmDeploy",
        {"source": SOURCE_ID},
        "plan",
        {"branch": "feature/JIRA-123_add-login", "release": "abc"},
    )
    assert text.startswith("Plan: deploy gaia branch 'feature/JIRA-123_add-login'")
    assert "$ docker build --platform linux/amd64" in text
    assert "warning: secret session_key" in text  # a plan in Dagger sees no secret values


def test_render_returns_a_directory_of_the_rendered_files(engine: OfflineEngine) -> None:
    async def call() -> Any:
        result, _ = await MODULE.get_structured_result(
            "SwarmDeploy", {"source": SOURCE_ID}, "render", {"branch": "develop", "release": "abc"}
        )
        return result

    directory = anyio.run(call)
    files = {
        step["args"]["path"]: step["args"]["contents"]
        for step in select(query(directory._ctx), "withNewFile")
    }
    expected, _ = pipeline.render(
        pipeline.Project.load(EXAMPLE_CONFIG), "develop", "abc", environ={}
    )
    assert files == expected
    assert yaml.safe_load(files["stacks/edge.yml"])["services"]["nginx"]
