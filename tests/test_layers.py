"""The package's layers, read from the bottom up: what each may import.

Checked on the source (every import statement, lazy ones inside functions too), so that a
module cannot reach upward without this failing.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "llmx_replay"


def imports_of(path: Path) -> set[str]:
    """Every module an import statement in `path` names (relative imports resolved)."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def modules_under(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


def reaches(imported: set[str], target: str) -> bool:
    return any(name == target or name.startswith(target + ".") for name in imported)


@pytest.mark.parametrize("path", modules_under("stream"), ids=lambda path: path.name)
def test_the_protocol_imports_no_http_client_and_nothing_above_it(path: Path) -> None:
    imported = imports_of(path)

    for forbidden in (
        "httpx",
        "httpx2",
        "llmx_replay._client",
        "llmx_replay.cassette",
        "llmx_replay.transports",
        "llmx_replay.harness",
        "llmx_replay.cli",
        "llmx_replay.pytest_plugin",
        "llmx_replay.syrupy_ext",
    ):
        assert not reaches(imported, forbidden), f"{path.name} imports {forbidden}"


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


@pytest.mark.parametrize(
    ("folder", "above"),
    [
        ("models", ["llmx_replay.stream", "llmx_replay._client", "llmx_replay.cassette"]),
        ("cassette", ["llmx_replay.transports", "llmx_replay.harness", "llmx_replay._client"]),
        ("transports", ["llmx_replay.harness", "llmx_replay._client"]),
    ],
)
def test_lower_layers_import_nothing_above_them(folder: str, above: list[str]) -> None:
    for path in modules_under(folder):
        imported = imports_of(path)
        for module in above:
            assert not reaches(imported, module), f"{path} imports {module}"


def test_only_the_plugin_the_snapshot_extension_and_the_cli_import_pytest_or_syrupy() -> None:
    importers = {
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if reaches(imports_of(path), "pytest") or reaches(imports_of(path), "syrupy")
    }

    assert importers == {"pytest_plugin.py", "syrupy_ext.py"}


def test_at_most_six_underscore_modules_remain_at_the_top() -> None:
    private = sorted(
        path.name
        for path in PACKAGE.glob("_*.py")
        if path.name not in ("__init__.py", "__main__.py")
    )

    assert len(private) <= 6, private


def test_the_import_reader_sees_what_a_module_imports() -> None:
    """The checks above would pass vacuously if `imports_of` missed imports."""
    module = PACKAGE / "harness" / "_session.py"

    imported = imports_of(module)

    assert "llmx_replay.transports._cassette" in imported
    assert "httpx" in imported
