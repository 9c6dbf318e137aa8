"""Reading the files users hand us, with errors that name them."""

from pathlib import Path

from llmx_replay._exceptions import InputError


def read_file(path: Path) -> bytes:
    """The bytes of `path`; a missing or unreadable file is an `InputError`."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(str(path), "no such file") from None
    except IsADirectoryError:
        raise InputError(str(path), "is a directory, not a file") from None
    except OSError as error:
        raise InputError(str(path), f"cannot be read: {error.strerror}") from None


CASSETTE_SUFFIXES = frozenset({".yaml", ".yml", ".json"})
"""The suffixes of cassette files; a cassette's name without one is a ``.yaml`` file."""


def cassette_path(folder: Path, name: str) -> Path:
    """Where the cassette called `name` lives under `folder`."""
    path = folder / name
    return path if path.suffix in CASSETTE_SUFFIXES else path.with_name(path.name + ".yaml")
