"""The JSON Schema of swarm-deploy.yml, made from the key table (config_keys.py): editors
validate and complete the file with it. `make schema` writes it to docs/."""

from __future__ import annotations

import json
import sys
from typing import Any

from swarm_deploy import config_keys as keys
from swarm_deploy.config import SHARED_KINDS
from swarm_deploy.config_sections import shared_section

DRAFT = "https://json-schema.org/draft/2020-12/schema"


def json_schema() -> keys.Json:
    """The schema of a whole config (swarm-deploy.yml)."""
    shared = {kind: shared_section(kind).schema() for kind in SHARED_KINDS}
    secret = {**keys.SECRET.schema(), "minProperties": 1, "maxProperties": 1}
    top = keys.TOP.schema()
    properties = {
        **top["properties"],
        "shared": {"type": "object", "properties": shared, "additionalProperties": False},
        "secrets": {**keys.named(keys.SECRET), "additionalProperties": secret},
    }
    return {
        "$schema": DRAFT,
        "title": "swarm-deploy.yml",
        "description": "The config of swarm-deploy: every key is described in docs/config.md.",
        **top,
        "properties": properties,
    }


def profile_schema() -> keys.Json:
    """The schema of a profile (swarm-deploy.<profile>.yml): any key may be left out, and
    nothing (~) removes the base's."""
    schema = _loosen(json_schema())
    return {**schema, "title": "swarm-deploy.<profile>.yml"}


def _loosen(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_loosen(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    # what the merged config must hold, not each file
    whole = ("required", "minProperties", "maxProperties")
    loose = {key: _loosen(value) for key, value in schema.items() if key not in whole}
    if isinstance(schema.get("additionalProperties"), dict):
        loose["additionalProperties"] = {"anyOf": [{"type": "null"}, loose["additionalProperties"]]}
    if "properties" in schema:
        loose["properties"] = {
            name: {"anyOf": [{"type": "null"}, _loosen(value)]}
            for name, value in schema["properties"].items()
        }
    return loose


def main() -> None:
    """Print the schema of a whole config, or with `profile` of a profile."""
    profile = sys.argv[1:] == ["profile"]
    print(json.dumps(profile_schema() if profile else json_schema(), indent=2))


if __name__ == "__main__":
    main()
