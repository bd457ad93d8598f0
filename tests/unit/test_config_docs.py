"""docs/config.md lists every key the code accepts, and the JSON Schema is the key table's."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from swarm_deploy import config, config_schema, profiles
from swarm_deploy import config_keys as keys
from swarm_deploy.config import SHARED_KINDS
from swarm_deploy.config_sections import shared_section
from swarm_deploy.errors import ConfigError
from tests.conftest import EXAMPLE_CONFIG, ROOT

DOCS = ROOT / "docs" / "config.md"
SCHEMAS = {
    ROOT / "docs" / "swarm-deploy.schema.json": config_schema.json_schema,
    ROOT / "docs" / "swarm-deploy.profile.schema.json": config_schema.profile_schema,
}
SECTIONS = {
    "Top level": keys.TOP,
    "images/<name>": keys.IMAGE,
    "services/<name>": keys.SERVICE,
    "services/<name>/metrics": keys.METRICS,
    "edge": keys.EDGE,
    "branches": keys.BRANCH_RULE,
    "gate": keys.GATE,
    "timeouts": keys.TIMEOUTS,
    "swarm": keys.SWARM,
    "limits": keys.LIMITS,
    "lock": keys.LOCK,
    "secrets/<name>": keys.SECRET,
    "shared/traefik/ports": keys.TRAEFIK_PORTS,
    "shared/traefik/acme": keys.ACME,
    "shared/traefik/acme/dns": keys.ACME_DNS,
}
SHARED = "shared/<kind>"


def key_rows() -> dict[str, list[list[str]]]:
    """The rows of docs/config.md's tables that describe a key (its name in backticks), by
    the heading above them."""
    rows: dict[str, list[list[str]]] = {}
    heading = ""
    for line in DOCS.read_text().splitlines():
        if line.startswith("#"):
            heading = html.unescape(line.lstrip("#").strip())
        elif line.startswith("| "):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            key = 1 if heading == SHARED else 0
            if re.fullmatch(r"`[a-z_]+`", cells[key]):
                rows.setdefault(heading, []).append(cells)
    return rows


def test_every_section_with_keys_is_documented_and_no_other() -> None:
    assert set(key_rows()) == {*SECTIONS, SHARED}


@pytest.mark.parametrize("heading", SECTIONS)
def test_each_documented_key_is_one_the_code_accepts_and_the_reverse(heading: str) -> None:
    rows = key_rows()[heading]
    section = SECTIONS[heading]
    assert sorted(row[0].strip("`") for row in rows) == sorted(section.allowed)
    # "required" in the default column (the top level: "yes" in its required column)
    required = [row[0].strip("`") for row in rows if row[1] in ("required", "yes")]
    assert sorted(required) == sorted(section.required)


@pytest.mark.parametrize("kind", SHARED_KINDS)
def test_each_kind_of_shared_service_has_its_keys_documented(kind: str) -> None:
    rows = [row for row in key_rows()[SHARED] if row[0] == "every kind" or f"`{kind}`" in row[0]]
    section = shared_section(kind)
    assert sorted(row[1].strip("`") for row in rows) == sorted(section.allowed)
    required = [row[1].strip("`") for row in rows if row[2].startswith("required")]
    assert sorted(required) == sorted(section.required)


def test_the_documented_kinds_are_the_codes() -> None:
    kinds = re.search(r"^Kinds: (.*?)\.$", DOCS.read_text(), re.MULTILINE | re.DOTALL)
    assert kinds is not None
    assert re.findall(r"`([a-z]+)`", kinds[1]) == list(SHARED_KINDS)


@pytest.mark.parametrize("path", SCHEMAS, ids=[path.name for path in SCHEMAS])
def test_the_committed_schema_is_the_one_the_key_table_makes(path: Path) -> None:
    """`make schema` writes them again after a change of config_keys.py."""
    made = SCHEMAS[path]()
    jsonschema.Draft202012Validator.check_schema(made)
    assert json.loads(path.read_text()) == made


def test_the_example_configs_are_valid_by_the_schemas() -> None:
    whole = jsonschema.Draft202012Validator(config_schema.json_schema())
    profile = jsonschema.Draft202012Validator(config_schema.profile_schema())
    local = ROOT / "swarm-deploy.local.yml"
    assert [e.message for e in whole.iter_errors(yaml.safe_load(EXAMPLE_CONFIG.read_text()))] == []
    assert [e.message for e in whole.iter_errors(profiles.merged_data(local))] == []
    assert [e.message for e in profile.iter_errors(yaml.safe_load(local.read_text()))] == []


def test_the_schema_refuses_a_misspelt_key_and_a_missing_one() -> None:
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    data["gate"]["intervall"] = data["gate"].pop("interval")
    del data["services"]["frontend"]["image"]
    whole = jsonschema.Draft202012Validator(config_schema.json_schema())
    assert sorted(e.message for e in whole.iter_errors(data)) == [
        "'image' is a required property",
        "Additional properties are not allowed ('intervall' was unexpected)",
    ]


# where each section has an entry in the example config
EXAMPLE_ENTRIES = {
    "services/<name>": ("services", "backend"),
    "services/<name>/metrics": ("services", "backend", "metrics"),
    "branches": ("branches", 1),
    "gate": ("gate",),
    "edge": ("edge",),
    "shared/traefik/ports": ("shared", "traefik", "ports"),
    "shared/traefik/acme": ("shared", "traefik", "acme"),
}
INTEGERS = [
    (heading, key.name, key.value)
    for heading, section in SECTIONS.items()
    for key in section.keys
    if key.value.get("type") == "integer"
]


def test_every_integer_key_of_the_table_is_in_the_bounds_test() -> None:
    assert {heading for heading, _, _ in INTEGERS} == set(EXAMPLE_ENTRIES)


@pytest.mark.parametrize(
    ("heading", "key", "schema"), INTEGERS, ids=[f"{h}/{k}" for h, k, _ in INTEGERS]
)
def test_the_reader_bounds_each_integer_as_the_schema_does(
    heading: str, key: str, schema: dict[str, int]
) -> None:
    """The reader's message names its bounds: they are the schema's."""
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    entry = data
    for part in EXAMPLE_ENTRIES[heading]:
        # a section the example leaves to its defaults is made here
        entry = entry[part] if isinstance(part, int) else entry.setdefault(part, {})
    entry[key] = schema["minimum"] - 1
    path = "/".join(str(part) for part in (*EXAMPLE_ENTRIES[heading], key))
    with pytest.raises(ConfigError) as caught:
        config.parse(yaml.safe_dump(data))
    bounds = (
        f"from {schema['minimum']} to {schema['maximum']}"
        if "maximum" in schema
        else f"at least {schema['minimum']}"
    )
    assert str(caught.value) == (
        f"{path}: should be an integer {bounds}, got {schema['minimum'] - 1}"
    )
