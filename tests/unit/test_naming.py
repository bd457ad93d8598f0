"""Branch names -> slugs, stacks, databases, secrets: valid, deterministic, distinct."""

from __future__ import annotations

import hashlib
import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from swarm_deploy import naming
from swarm_deploy.errors import BranchNameError

DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")
PG_IDENT = re.compile(r"[a-z_][a-z0-9_]*")
SWARM_OBJECT = re.compile(r"[a-zA-Z0-9]([a-zA-Z0-9_.-]*[a-zA-Z0-9])?")

# branch -> (readable part of the slug, whether the raw name's hash is appended)
REAL_BRANCHES = {
    "develop": ("develop", False),
    "main": ("main", False),
    "feature-1": ("feature-1", False),
    "feature/JIRA-123_add-login": ("feature-jira-123-add-login", True),
    "renovate/pin-dependencies": ("renovate-pin-dependencies", True),
    "dependabot/npm_and_yarn/lodash-4.17.21": ("dependabot-npm-and-yarn-lodash-4-17-21", True),
    "x; rm -rf /": ("x-rm-rf", True),
    "$(id)": ("id", True),
    "fix/ünïcödé-naïve": ("fix-unicode-naive", True),
    "日本語": ("b", True),  # nothing ASCII survives: the hash alone tells it apart
    "shared": ("shared", True),  # reserved for the shared stack's names
    "release-abcdef": ("release-abcdef", True),  # looks hashed: hash it for real
}


@pytest.mark.parametrize(("branch", "expected"), REAL_BRANCHES.items())
def test_real_world_branch_names(branch: str, expected: tuple[str, bool]) -> None:
    readable, hashed = expected
    tail = "-" + hashlib.sha256(branch.encode()).hexdigest()[:6] if hashed else ""
    names = naming.BranchNames.derive("gaia", branch)
    assert names.slug == readable + tail
    assert DNS_LABEL.fullmatch(names.slug)


def test_long_names_are_cut_to_the_budget_and_stay_apart() -> None:
    first = "feature/" + "a" * 200
    second = "feature/" + "a" * 199 + "b"
    slug_a = naming.slug(first, max_len=33)
    slug_b = naming.slug(second, max_len=33)
    assert len(slug_a) == len(slug_b) == 33
    assert slug_a != slug_b
    assert slug_a.startswith("feature-aaaa")


def test_branches_that_fold_alike_stay_apart() -> None:
    slugs = {naming.slug(b) for b in ("feature/a_b", "feature/a-b", "Feature/A-B", "feature-a-b")}
    assert len(slugs) == 4
    assert "feature-a-b" in slugs  # the one already a DNS label keeps its name


@pytest.mark.parametrize(
    ("branch", "problem"),
    [
        # was "branch an empty name has no letters or digits"
        ("", "the branch name is empty"),
        (" ", "the branch name ' ' is only whitespace"),
        ("\n\t", "the branch name '\\n\\t' is only whitespace"),
        ("///", "branch '///' has no letters or digits, so no name can be derived from it"),
        ("-_-", "branch '-_-' has no letters or digits, so no name can be derived from it"),
        ("...", "branch '...' has no letters or digits, so no name can be derived from it"),
    ],
)
def test_names_without_letters_or_digits_are_rejected_plainly(branch: str, problem: str) -> None:
    with pytest.raises(BranchNameError) as caught:
        naming.slug(branch)
    assert str(caught.value) == f"{problem}; pass the git branch name, e.g. --branch develop"


def test_derived_names_for_develop() -> None:
    names = naming.BranchNames.derive("gaia", "develop")
    assert names.edge_stack == "gaia-develop-edge"
    assert names.colour_stack("green") == "gaia-develop-green"
    assert names.colour_service("blue", "backend") == "gaia-develop-blue_backend"
    assert names.network == "gaia-develop"
    assert names.database("main") == "gaia_develop_main"
    assert names.role == "gaia_develop"
    assert names.redis_prefix == "gaia:develop:"
    assert names.secret("session_key", "0123456789abcdef") == "gaia_develop_session_key_0123456789"


def test_slug_budget_counts_the_longest_derived_name() -> None:
    budget = naming.slug_budget("gaia", ["backend"], ["main"], ["telegram_token"])
    # secret names are the tightest: 64 - len("gaia___") - 10 - len("telegram_token")
    assert budget == 64 - 7 - 10 - 14


@given(st.text())
@example("feature/a_b")
@example("-" * 70 + "x")
@example("\ud800abc")
def test_any_text_gives_a_valid_deterministic_slug_or_a_clear_error(branch: str) -> None:
    try:
        first = naming.BranchNames.derive("gaia", branch, max_len=33)
    except BranchNameError:
        assert not any(ch.isalnum() for ch in branch)
        return
    again = naming.BranchNames.derive("gaia", branch, max_len=33)
    assert first == again
    assert DNS_LABEL.fullmatch(first.slug)
    assert len(first.slug) <= 33
    assert len(first.colour_service("green", "backend")) <= 63
    assert PG_IDENT.fullmatch(first.database("main"))
    assert len(first.database("main")) <= 63
    secret = first.secret("telegram_token", "f" * 64)
    assert SWARM_OBJECT.fullmatch(secret)
    assert len(secret) <= 64


@given(st.text(min_size=1), st.text(min_size=1))
def test_different_branches_get_different_slugs(a: str, b: str) -> None:
    try:
        slug_a, slug_b = naming.slug(a, 33), naming.slug(b, 33)
    except BranchNameError:
        return
    assert (slug_a == slug_b) == (a == b)
