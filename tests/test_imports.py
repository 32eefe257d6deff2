"""The package's modules import one another without a circle (module-level imports)."""

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import mirisk

PACKAGE = Path(mirisk.__file__).parent


def module_name(path: Path) -> str:
    parts = ("mirisk", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_module_imports_itself_through_others():
    files = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        imported = set()
        for node in ast.parse(path.read_text()).body:  # what runs at import time
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
        graph[name] = {other for other in imported if other in files and other != name}
    assert len(graph) > 100  # the whole package was read
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as error:
        raise AssertionError(f"import circle: {' -> '.join(error.args[1])}") from None
