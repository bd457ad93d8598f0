"""Secret values are masked wherever they could be printed, and read only on purpose."""

from __future__ import annotations

from pathlib import Path

import pytest

from swarm_deploy.errors import SecretSourceError
from swarm_deploy.secrets import MASK, SecretSource, SecretValue


def test_a_secret_value_never_shows_in_repr_str_or_format() -> None:
    value = SecretValue(b"hunter2")
    for shown in (repr(value), str(value), f"{value}", f"{value!r}", "%s" % (value,)):  # noqa: UP031
        assert "hunter2" not in shown
        assert MASK in shown
    assert "hunter2" not in repr([value, {"k": value}])
    assert value.reveal() == b"hunter2"


def test_env_source_reads_the_variable_and_says_how_to_set_a_missing_one() -> None:
    source = SecretSource("session_key", env="GAIA_SESSION_KEY")
    assert source.read({"GAIA_SESSION_KEY": "s3"}).reveal() == b"s3"
    with pytest.raises(SecretSourceError) as caught:
        source.read({})
    assert str(caught.value) == (
        "secret 'session_key': environment variable GAIA_SESSION_KEY is not set; export it "
        "(for example `export GAIA_SESSION_KEY=...`) or change secrets/session_key in the config"
    )


def test_file_source_is_relative_to_the_config_and_drops_the_trailing_newline(
    tmp_path: Path,
) -> None:
    (tmp_path / "token").write_text("t0ken\n")
    source = SecretSource("telegram_token", file="token")
    assert source.read(base=tmp_path).reveal() == b"t0ken"
    with pytest.raises(SecretSourceError, match=r"cannot read file .*missing \(No such file"):
        SecretSource("x", file="missing").read(base=tmp_path)
