"""The command tree and what every command shares: one-line errors, progress bars, consoles."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from mirisk.errors import MiriskError

app = typer.Typer(
    no_args_is_help=True, pretty_exceptions_enable=False,
    help="mirisk: audit how much a model leaks about its training data through model inversion.",
)
train_app = typer.Typer(no_args_is_help=True, help="Train target models.")
attack_app = typer.Typer(no_args_is_help=True, help="Run one attack against a model.")
demo_app = typer.Typer(help="Run a worked example end to end on bundled data.")
app.add_typer(train_app, name="train")
app.add_typer(attack_app, name="attack")
app.add_typer(demo_app, name="demo")
console = Console()
errors = Console(stderr=True)

Command = TypeVar("Command", bound=Callable[..., Any])


def friendly_errors(command: Command) -> Command:
    """Turn a MiriskError into one line on stderr and exit status 2, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except MiriskError as error:
            errors.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """A Rich progress bar; yields ``update(completed)``."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("eta"), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task(description, total=total)
        yield lambda completed: progress.update(task, completed=completed)


def parse_epsilons(text: str) -> tuple[float | None, ...]:
    """'inf,8,1' -> (None, 8.0, 1.0); None is the non-private model."""
    values: list[float | None] = []
    for part in (part.strip().lower() for part in text.split(",") if part.strip()):
        try:
            value = None if part in ("inf", "∞") else float(part)
        except ValueError:
            raise MiriskError(f"epsilons must be positive numbers or 'inf', got {part!r}") from None
        if value is not None and not value > 0:
            raise MiriskError(f"epsilons must be positive numbers or 'inf', got {part!r}")
        values.append(value)
    if not values:
        raise MiriskError("give at least one epsilon")
    return tuple(values)
