"""Read a text file from outside (rules, universe, scenario, BOD CSV) with its size bounded before
anything is parsed, and UTF-8 required: a problem is one line naming the file and where."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from protocol.parse import printable

KIB = 1024
MIB = 1024 * KIB


class InputFileError(ValueError):
    """A file that cannot be used; `str()` is the one line a user sees: `<file>: <where>: <problem>`."""

    def __init__(self, path: Path | str, where: str, problem: str) -> None:
        super().__init__(printable(f"{path}: {where}: {problem}"))
        self.path = path
        self.where = where
        self.problem = problem


def read_text(path: Path, max_bytes: int, *, shown: str | None = None) -> str:
    """The file's text. Refused: not a regular file, more than `max_bytes` bytes (read no further
    than one byte past the limit, so /dev/zero or a 50 MB file costs nothing), not UTF-8 (with the
    line and byte offset of the first bad byte). `shown` names the file in errors (default: path)."""
    name = shown if shown is not None else str(path)
    try:
        with open(path, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise InputFileError(name, "(file)", "not a regular file")
            data = handle.read(max_bytes + 1)
    except OSError as err:
        raise InputFileError(name, "(file)", f"cannot read: {err.strerror or type(err).__name__}") from None
    if len(data) > max_bytes:
        raise InputFileError(name, "(file)", f"larger than the limit of {max_bytes:,} bytes")
    return decode_utf8(data, name)


def decode_utf8(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise InputFileError(name, f"line {line}, byte {err.start}", f"not UTF-8 (byte 0x{data[err.start]:02x}); save the file as UTF-8") from None
