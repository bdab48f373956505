"""Resumable fan-out: each finished item is appended to a JSON-lines journal at once.

The first line of a journal is the job's configuration; every other line is one
finished record. Running the same job again reads the journal back, skips what is
done and appends the rest, so an interruption loses at most the items in flight.
A journal written with another configuration is refused rather than mixed in.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gpsr.errors import GpsrError
from gpsr.executor import Executor


def read_journal(path: Path, config: dict[str, Any], key: str,
                 repair: bool = False) -> dict[str, dict]:
    """Records of an earlier run of the same job, by ``record[key]``.

    A torn last line is dropped (only the last line can be cut short by an interruption).
    A corrupt record elsewhere is refused with a message naming its line, unless ``repair``
    drops it (its item is then done again; every good record is kept). A corrupt first line
    (the job's configuration) cannot be repaired: the message says to delete the journal.
    """
    lines = path.read_bytes().splitlines()
    header = _decode(lines[0]) if lines else None
    if not isinstance(header, dict) or not isinstance(header.get("config"), dict):
        raise GpsrError(f"{path}: line 1 is not a gpsr journal header; delete {path.name} to "
                        "start the job over (no finished output is touched)")
    header = header["config"]
    for name, value in config.items():
        if header.get(name) != value:
            raise GpsrError(
                f"{path}: was made with {name}={header.get(name)!r}, not {value!r} "
                "(use the same options, or --force to start over)"
            )
    records: dict[str, dict] = {}
    corrupt: list[int] = []
    for lineno, line in enumerate(lines[1:], start=2):
        record = _decode(line)
        if isinstance(record, dict) and isinstance(record.get(key), str):
            records[record[key]] = record
        elif lineno < len(lines) and line.strip():
            corrupt.append(lineno)
    if corrupt and not repair:
        raise GpsrError(
            f"{path}:{corrupt[0]}: corrupt record ({len(corrupt)} in all); run again with "
            f"--repair to drop only those (their items are redone, the {len(records)} good "
            "records are kept)"
        )
    return records


def _decode(line: bytes) -> object:
    """A journal line's JSON value; None where it is not UTF-8 JSON."""
    try:
        return json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None


def run_journaled(
    path: Path,
    config: dict[str, Any],
    items: Sequence[Any],
    item_key: Callable[[Any], str],
    fn: Callable[[Any], dict],
    executor: Executor,
    key: str,
    done: dict[str, dict] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, dict]:
    """Run ``fn`` over the ``items`` whose ``item_key`` has no record yet; return all records.

    ``done`` are records already known (e.g. read back from the journal); ``fn`` must
    return a record holding ``key``. ``on_progress(finished, total)`` follows every record.
    """
    records = dict(done or {})
    todo = [item for item in items if item_key(item) not in records]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GpsrError(f"{path.parent}: cannot create the folder ({exc.strerror})") from None
    # Rewriting the journal drops a torn last line before new records follow it.
    with path.open("w") as fh:
        fh.write(json.dumps({"config": config}) + "\n")
        for record in records.values():
            fh.write(json.dumps(record) + "\n")
    total = len(records) + len(todo)
    if on_progress:
        on_progress(len(records), total)
    with path.open("a") as fh:
        for _, record in executor.map(fn, todo):
            fh.write(json.dumps(record) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
            records[record[key]] = record
            if on_progress:
                on_progress(len(records), total)
    return records
