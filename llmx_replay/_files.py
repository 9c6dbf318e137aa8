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
