"""The package's layers, read from the bottom up: what each may import.

Checked on the source (every import statement, lazy ones inside functions too), so that a
module cannot reach upward without this failing.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "llmx_replay"


def imports_of(path: Path) -> set[str]:
    """Every module an import statement in `path` names, and each name it imports from one."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: the package uses absolute imports only"
            base = node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def own_modules(imported: set[str]) -> set[str]:
    """The modules of this package that `imported` names (the package itself as ``""``)."""
    return {
        name.removeprefix("llmx_replay").lstrip(".")
        for name in imported
        if name == "llmx_replay" or name.startswith("llmx_replay.")
    }


def modules_under(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


def reaches(imported: set[str], target: str) -> bool:
    return any(name == target or name.startswith(target + ".") for name in imported)


# What each lower layer may import of the package: nothing above it, not even through the
# public face (`from llmx_replay import ...` would load everything).
ALLOWED = {
    "models": ("models", "_exceptions"),
    "stream": ("stream", "models", "_exceptions"),
    "cassette": ("cassette", "_exceptions", "_files", "_version"),
    "transports": ("transports", "cassette", "_options", "_clock", "_exceptions"),
    "serve": ("serve", "transports", "cassette", "_options", "_clock", "_exceptions", "_files"),
}


def allowed(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


@pytest.mark.parametrize(
    ("folder", "path"),
    [(folder, path) for folder in ALLOWED for path in modules_under(folder)],
    ids=lambda value: value.name if isinstance(value, Path) else value,
)
def test_lower_layers_import_only_the_layers_below_them(folder: str, path: Path) -> None:
    reached = own_modules(imports_of(path))

    assert all(allowed(name, ALLOWED[folder]) for name in reached), sorted(reached)


@pytest.mark.parametrize("path", modules_under("stream"), ids=lambda path: path.name)
def test_the_protocol_imports_no_http_client(path: Path) -> None:
    imported = imports_of(path)

    assert not reaches(imported, "httpx")
    assert not reaches(imported, "httpx2")


def test_the_layer_check_sees_an_import_through_the_public_face() -> None:
    """`from llmx_replay import ChatClient` in `stream/` must not pass for a sibling import."""
    reached = own_modules({"llmx_replay", "llmx_replay.ChatClient"})

    assert not all(allowed(name, ALLOWED["stream"]) for name in reached)


@pytest.mark.parametrize(
    "path",
    # `python -m llmx_replay` is the command line's other entry point.
    [
        path
        for path in sorted(PACKAGE.rglob("*.py"))
        if "cli" not in path.relative_to(PACKAGE).parts and path.name != "__main__.py"
    ],
    ids=lambda path: str(path.relative_to(PACKAGE)),
)
def test_nothing_outside_the_cli_imports_it_or_click(path: Path) -> None:
    imported = imports_of(path)

    assert not reaches(imported, "llmx_replay.cli")
    assert not reaches(imported, "click")


def test_only_the_plugin_and_the_snapshot_extension_import_pytest_or_syrupy() -> None:
    importers = {
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if reaches(imports_of(path), "pytest") or reaches(imports_of(path), "syrupy")
    }

    assert importers == {"pytest_plugin.py", "syrupy_ext.py"}


def test_only_the_server_runs_uvicorn_and_only_the_top_reaches_the_server() -> None:
    runs_uvicorn = {
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if reaches(imports_of(path), "uvicorn")
    }
    reaches_server = {
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if "serve" not in path.relative_to(PACKAGE).parts[:1]
        and reaches(imports_of(path), "llmx_replay.serve")
    }

    assert runs_uvicorn == {"serve/_server.py"}
    assert reaches_server == {"__init__.py", "pytest_plugin.py", "cli/_serve.py"}


def test_at_most_six_underscore_modules_remain_at_the_top() -> None:
    private = sorted(
        path.name
        for path in PACKAGE.glob("_*.py")
        if path.name not in ("__init__.py", "__main__.py")
    )

    assert len(private) <= 6, private


def test_the_import_reader_sees_what_a_module_imports() -> None:
    """The checks above would pass vacuously if `imports_of` missed imports."""
    imported = imports_of(PACKAGE / "harness" / "_session.py")

    assert {"llmx_replay.transports._cassette", "httpx"} <= imported
    assert "transports._cassette.CassetteTransport" in own_modules(imported)
