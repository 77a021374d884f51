"""Read and write a day's file set (`schema.py` documents it)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import ValidationError

from marketdata.schema import (
    DICTIONARY_COLUMNS,
    MANIFEST_FILE,
    PRINTS_FILE,
    PRINTS_SCHEMA,
    QUOTES_FILE,
    QUOTES_SCHEMA,
    Day,
    DayDataError,
    DayManifest,
    check_values,
    normalize,
    sort_rows,
)
from protocol.parse import first_error


class DayFileError(Exception):
    """A file set that cannot be read or is not what `schema.py` says; `str()` is one line
    naming the file and the problem."""


def write_day(day: Day, directory: Path | str) -> Path:
    """Write the three files (same day ⇒ same bytes). Returns the directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    quotes = sort_rows(normalize(day.quotes, QUOTES_SCHEMA))
    prints = sort_rows(normalize(day.prints, PRINTS_SCHEMA))
    _write_table(quotes, directory / QUOTES_FILE)
    _write_table(prints, directory / PRINTS_FILE)
    manifest = day.manifest.model_copy(update={"quotes": quotes.num_rows, "prints": prints.num_rows})
    text = json.dumps(manifest.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"
    (directory / MANIFEST_FILE).write_text(text)
    return directory


def _write_table(table: pa.Table, path: Path) -> None:
    # One row group up to 8M rows (reads then need no concatenation); zstd keeps a day small.
    pq.write_table(table, path, compression="zstd", row_group_size=1 << 23)


def read_manifest(directory: Path | str) -> DayManifest:
    path = Path(directory) / MANIFEST_FILE
    try:
        return DayManifest.model_validate_json(path.read_text())
    except OSError as err:
        raise DayFileError(f"{path}: cannot read: {err.strerror or err}") from None
    except ValidationError as err:
        raise DayFileError(f"{path}: not a day manifest: {first_error(err)}") from None
    except ValueError as err:
        raise DayFileError(f"{path}: not a day manifest: {str(err).splitlines()[0]}") from None


def read_table(path: Path, schema: pa.Schema) -> pa.Table:
    try:
        # ParquetFile.read gives one chunk per row group (read_table splits into batches).
        table = pq.ParquetFile(path, read_dictionary=DICTIONARY_COLUMNS[path.name]).read()
    except (OSError, pa.ArrowException) as err:
        raise DayFileError(f"{path}: cannot read: {err}") from None
    try:
        table = normalize(table, schema)
        check_values(table, path.name)
    except (DayDataError, pa.ArrowException) as err:
        raise DayFileError(f"{path}: {str(err).splitlines()[0]}") from None
    return table


def read_day(directory: Path | str) -> Day:
    """The file set in `directory`, checked (types, values: `schema.py`), rows in file order
    (`schema.sort_rows` sorts them). Raises DayFileError, one line naming the file."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    quotes = read_table(directory / QUOTES_FILE, QUOTES_SCHEMA)
    prints = read_table(directory / PRINTS_FILE, PRINTS_SCHEMA)
    return Day(manifest=manifest, quotes=quotes, prints=prints)


def check_day(directory: Path | str) -> DayManifest:
    """Open and check a day's files (a scenario's load, before it runs): its manifest."""
    return read_day(directory).manifest
