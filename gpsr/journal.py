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


def read_journal(path: Path, config: dict[str, Any], key: str) -> dict[str, dict]:
    """Records of an earlier run of the same job, by ``record[key]``; a torn last line is
    dropped (only the last line can be cut short by an interruption)."""
    lines = path.read_text().splitlines()
    try:
        header = json.loads(lines[0])["config"] if lines else None
    except (json.JSONDecodeError, KeyError, TypeError):
        header = None
    if header is None:
        raise GpsrError(f"{path}: not a gpsr journal (use --force to start over)")
    for name, value in config.items():
        if header.get(name) != value:
            raise GpsrError(
                f"{path}: was made with {name}={header.get(name)!r}, not {value!r} "
                "(use the same options, or --force to start over)"
            )
    records: dict[str, dict] = {}
    for lineno, line in enumerate(lines[1:], start=2):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if lineno == len(lines):
                break
            raise GpsrError(f"{path}:{lineno}: corrupt record (use --force)") from None
        records[record[key]] = record
    return records


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
    path.parent.mkdir(parents=True, exist_ok=True)
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
