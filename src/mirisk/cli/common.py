"""The command tree and what every command shares: one-line errors, progress bars, consoles."""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from mirisk.errors import MiriskError
from mirisk.models.imported import ImportSpec
from mirisk.validation import check_seed

app = typer.Typer(
    no_args_is_help=True, pretty_exceptions_enable=False,
    help="mirisk: audit how much a model leaks about its training data through model inversion.",
)
train_app = typer.Typer(no_args_is_help=True, help="Train target models.")
attack_app = typer.Typer(no_args_is_help=True, help="Run one attack against a model.")
demo_app = typer.Typer(help="Run a worked example end to end on bundled data.")
sweep_app = typer.Typer(no_args_is_help=True, help="Retrain under each defence and measure accuracy and attack success.")
app.add_typer(train_app, name="train")
app.add_typer(attack_app, name="attack")
app.add_typer(demo_app, name="demo")
app.add_typer(sweep_app, name="sweep")
console = Console()
errors = Console(stderr=True)

Command = TypeVar("Command", bound=Callable[..., Any])


def friendly_errors(command: Command) -> Command:
    """Turn a MiriskError, or an OS error on a file (a read-only or missing folder, a full
    disk), into one line on stderr and exit status 2, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except MiriskError as error:
            errors.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except OSError as error:
            where = f" {error.filename}" if error.filename else ""
            errors.print(f"[bold red]error:[/] cannot use{escape(where)}: {escape(str(error.strerror or error))}",
                         highlight=False,
                         soft_wrap=True, markup=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def seed_option(help: str) -> Any:
    """A ``--seed`` option, refused as a usage error unless it is a whole number in 0..2**32-1
    (the check the audit config and the API use too)."""

    def checked(value: int) -> int:
        try:
            return check_seed("--seed", value)
        except MiriskError as error:
            raise typer.BadParameter(str(error)) from None

    return typer.Option(help=help, callback=checked)


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


def parse_numbers(text: str | None, what: str, count: int | None = None) -> tuple[float, ...] | None:
    """'1,2.5' -> (1.0, 2.5); None stays None; a one-line error names the option otherwise."""
    if text is None:
        return None
    try:
        values = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise MiriskError(f"{what} must be comma-separated numbers, got {text!r}") from None
    if count is not None and len(values) != count:
        raise MiriskError(f"{what} needs {count} numbers, got {text!r}")
    return values


def import_spec(input_shape: str | None, value_range: str | None, classes: str | None, outputs: str,
                mean: str | None, std: str | None, arch: str | None) -> ImportSpec:
    """The import options of a model file (see mirisk.models.imported), checked."""
    shape = parse_numbers(input_shape, "--input-shape")
    if shape is not None and (len(shape) != 3 or any(v < 1 or v != int(v) for v in shape)):
        raise MiriskError(f"--input-shape must be C,H,W (positive integers), got {input_shape!r}")
    names = None
    if classes is not None:
        path = Path(classes.removeprefix("@"))
        if classes.startswith("@"):
            if not path.is_file():
                raise MiriskError(f"class-name file not found: {path}")
            names = tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
        else:
            names = tuple(part.strip() for part in classes.split(","))
    return ImportSpec(
        input_shape=None if shape is None else tuple(int(v) for v in shape),
        value_range=parse_numbers(value_range, "--value-range", 2) or (0.0, 1.0),
        classes=names, outputs=outputs, mean=parse_numbers(mean, "--mean"), std=parse_numbers(std, "--std"), arch=arch,
    )


class BackendName(str, Enum):
    local = "local"
    ray = "ray"


BackendOption = Annotated[BackendName, typer.Option(help="Where the tasks run: this process, or a Ray cluster.")]
AddressOption = Annotated[str | None, typer.Option(
    help="Ray cluster to join: auto, HOST:PORT or ray://HOST:PORT (default: start a private one on this machine).")]
CpusOption = Annotated[int | None, typer.Option(
    help="CPUs (and torch threads) per task; default 1 on Ray, all of them locally.")]


EndpointOption = Annotated[str | None, typer.Option(
    help="Attack a live mirisk gateway at this URL instead of the model in process (the gateway applies its "
         "policy to the key; --policy is then not used).")]
ApiKeyOption = Annotated[str | None, typer.Option(envvar="MIRISK_API_KEY", show_envvar=True,
                                                  help="The gateway API key for --endpoint.")]


IMPORT_OPTIONS: dict[str, tuple[Any, Any]] = {
    "input_shape": (Annotated[str | None, typer.Option(help="Imported model: input shape C,H,W.")], None),
    "value_range": (Annotated[str | None, typer.Option(help="Imported model: input value range low,high "
                                                            "(default 0,1).")], None),
    "classes": (Annotated[str | None, typer.Option(help="Imported model: class names a,b,c or @file (one per "
                                                        "line); default: the data's people.")], None),
    "outputs": (Annotated[str, typer.Option(help="Imported model: it returns logits or probs.")], "logits"),
    "mean": (Annotated[str | None, typer.Option(help="Imported model: per-channel normalisation mean.")], None),
    "std": (Annotated[str | None, typer.Option(help="Imported model: per-channel normalisation std.")], None),
    "arch": (Annotated[str | None, typer.Option(help="safetensors file: module:factory that builds your model.")],
             None),
}


def with_import_options(command: Command) -> Command:
    """Give a command the import flags of a model file (see mirisk.models.imported) and hand
    it their ``ImportSpec`` as its ``spec`` argument."""
    hints = typing.get_type_hints(command, include_extras=True)
    own = [parameter.replace(annotation=hints[parameter.name])
           for parameter in inspect.signature(command).parameters.values() if parameter.name != "spec"]
    added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
             for name, (annotation, default) in IMPORT_OPTIONS.items()]

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        options = {name: kwargs.pop(name) for name in IMPORT_OPTIONS}
        return command(*args, spec=import_spec(**options), **kwargs)

    wrapper.__signature__ = inspect.Signature(own + added)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {parameter.name: parameter.annotation for parameter in own + added}
    return wrapper  # type: ignore[return-value]
