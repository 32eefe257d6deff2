"""The ``mirisk`` command line: importing the command modules registers their commands."""

from __future__ import annotations

import sys

import typer
from rich.markup import escape
from typer._click import exceptions as click_errors  # Typer carries its own copy of Click and raises its exceptions

from mirisk.cli import audit, faces, federated, mri, priors, serve, sweep, tabular  # noqa: F401  (registers the commands)
from mirisk.cli.common import app, errors

__all__ = ["app", "main"]


def main() -> None:
    """The ``mirisk`` entry point. A usage error (an unknown option, a value the option's check
    refuses) is one line naming the problem and the usage line, exit status 2, never a boxed
    panel whose words wrap across lines."""
    command = typer.main.get_command(app)
    try:
        status = command.main(prog_name="mirisk", standalone_mode=False)
    except click_errors.NoArgsIsHelpError as shown:
        shown.show()
        status = shown.exit_code
    except click_errors.UsageError as error:
        errors.print(f"[bold red]error:[/] {escape(error.format_message())}", highlight=False, soft_wrap=True)
        if error.ctx is not None:
            errors.print(error.ctx.get_usage(), highlight=False, soft_wrap=True, markup=False)
        status = error.exit_code
    except click_errors.ClickException as error:
        error.show()
        status = error.exit_code
    except typer.Abort:
        errors.print("aborted", highlight=False)
        status = 1
    sys.exit(status if isinstance(status, int) else 0)
