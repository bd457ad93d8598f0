"""`swarm-deploy templates`: the packaged templates, and the files next to the config that
override them one by one (template_files.py decides which is used)."""

from __future__ import annotations

from pathlib import Path

import click

from swarm_deploy import __version__, template_files
from swarm_deploy.cli_options import config_option
from swarm_deploy.cli_output import exit_on_error, out


def _names(name: str | None) -> list[str]:
    try:
        return template_files.selected(name)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="NAME") from None


@click.group()
def templates() -> None:
    """The templates a deploy renders: packaged with swarm-deploy, each overridable.

    \b
    A repository needs only swarm-deploy.yml. A file next to it at a template's path
    (nginx/nginx.conf, stacks/app.yml, ...) replaces that one packaged file; the others
    stay packaged and follow swarm-deploy's updates. To change one, eject it, edit it,
    commit it; `swarm-deploy check` warns once the packaged file changes after that.
      swarm-deploy templates list
      swarm-deploy templates eject nginx/nginx.conf
      swarm-deploy templates diff nginx/nginx.conf
    """


@templates.command(name="list")
@config_option
def list_command(config_path: Path) -> None:
    """Each template and where a deploy takes it from: packaged, or the file overriding it."""
    with exit_on_error():
        found = template_files.load(config_path.parent)
    for name in sorted(template_files.TEMPLATE_FILES):
        if name not in found.overrides:
            out.print(f"{name}  packaged (swarm-deploy {__version__})", markup=False)
            continue
        override = template_files.override(name, found.overrides[name])
        where = config_path.parent / name
        out.print(f"{name}  overridden by {where}: {override.age.value}", markup=False)


@templates.command()
@config_option
@click.argument("name", required=False)
def eject(config_path: Path, name: str | None) -> None:
    """Copy packaged templates next to the config, to change them there.

    NAME: a folder (stacks, nginx, relay, promtail, prometheus, grafana) or one file
    (nginx/nginx.conf); none: every template. An existing file is never overwritten.

    \b
    Each copy starts with a Jinja comment (it renders to nothing) naming the package
    version and the packaged file's sha256: `swarm-deploy check` compares it with the
    installed package and warns when the packaged file has changed since. Eject only
    what you change: the files you leave packaged follow swarm-deploy's updates.
      swarm-deploy templates eject nginx/nginx.conf
      swarm-deploy templates eject stacks
    """
    names = _names(name)
    root = config_path.parent
    written, skipped = template_files.eject(root, names)
    for done in written:
        out.print(f"wrote {root / done} (from swarm-deploy {__version__})", markup=False)
    for left in skipped:
        out.print(
            f"skipped {root / left}: it exists and is kept; "
            f"`swarm-deploy templates diff {left}` shows how it differs from the packaged one",
            markup=False,
        )


@templates.command()
@config_option
@click.argument("name", required=False)
def diff(config_path: Path, name: str | None) -> None:
    """Show how the overrides differ from the packaged templates, as `diff -u`.

    NAME: a folder or one file, as for eject; none: every override. The first line an
    eject writes is left out; lines starting with - are the packaged file's, + yours.
    """
    names = _names(name)
    with exit_on_error():
        found = template_files.load(config_path.parent)
    shown = [each for each in names if each in found.overrides]
    for each in shown:
        out.print(template_files.diff(each, found.overrides[each]), end="", markup=False)
    if not shown:
        what = f"{name} is not" if name else "no template is"
        text = f"{what} overridden next to {config_path}: the packaged one is used"
        out.print(text, markup=False)
