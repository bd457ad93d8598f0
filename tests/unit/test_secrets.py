"""Secret values are masked wherever they could be printed, and read only on purpose."""

from __future__ import annotations

from pathlib import Path

import pytest

from swarm_deploy.errors import ConfigError, SecretSourceError, SecretValueError
from swarm_deploy.secrets import MASK, SecretSource, SecretValue, parse_env

TOO_LARGE = "is 512000 bytes; a Swarm secret must be smaller than 512000 bytes (500 KiB)"


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


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "is empty"),
        (" \t ", "holds only whitespace (3 bytes)"),
        ("x" * 512_000, TOO_LARGE),
    ],
)
def test_an_env_value_that_is_set_but_unusable_is_refused_without_showing_it(
    value: str, reason: str
) -> None:
    with pytest.raises(SecretValueError) as caught:
        SecretSource("session_key", env="GAIA_SESSION_KEY").read({"GAIA_SESSION_KEY": value})
    assert caught.value.reason == reason
    assert str(caught.value) == (
        f"secret 'session_key': environment variable GAIA_SESSION_KEY {reason}; give "
        "GAIA_SESSION_KEY the secret's value (in CI: set the repository secret) or change "
        "secrets/session_key in the config"
    )


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "is empty"),
        (b"\n", "holds only whitespace (1 byte)"),
        (b"\r\n", "holds only whitespace (2 bytes)"),
        (b"x" * 512_000 + b"\n", TOO_LARGE),
    ],
)
def test_a_file_that_is_there_but_unusable_is_refused(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    (tmp_path / "token").write_bytes(content)
    with pytest.raises(SecretValueError) as caught:
        SecretSource("telegram_token", file="token").read(base=tmp_path)
    assert str(caught.value) == (
        f"secret 'telegram_token': file {tmp_path / 'token'} {reason}; write the secret's "
        f"value into {tmp_path / 'token'} or change secrets/telegram_token in the config"
    )


def test_the_largest_value_swarm_takes_is_read() -> None:
    """511999 bytes: what the test bed's engine took; 512000 it refused."""
    value = SecretSource("big", env="BIG").read({"BIG": "x" * 511_999})
    assert len(value.reveal()) == 511_999


@pytest.mark.parametrize("value", ['"s3cret"', "'s3cret'"])
def test_a_quoted_env_file_value_is_refused_without_showing_it(value: str) -> None:
    """Compose strips the quotes of its .env; a secret must not keep them."""
    with pytest.raises(ConfigError) as refused:
        parse_env(f"A=1\nDB_PASSWORD={value}\n", ".env")
    assert str(refused.value) == (
        ".env line 2: DB_PASSWORD's value is quoted: Compose would strip the quotes, this "
        "file's reader keeps every character after `=`; write the value without them "
        "(the line is not shown)"
    )
    assert "s3cret" not in str(refused.value)


def test_an_env_file_value_keeps_every_character_after_the_equals_sign() -> None:
    assert parse_env('A= x "y" \nB="\nC=a#b\n', "f") == {"A": ' x "y" ', "B": '"', "C": "a#b"}
