"""Issue 5, item 5: 16 processes started together, 1,000 mixed operations each, one directory.

Every value carries its key, its writer and a sequence number. No timeout or "database is
locked" may reach a caller (a worker that raises exits non-zero), the disk tier must never
fault (no warning, no disabled tier), and every read must equal a value some process wrote for
that key.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import Runs, Workers

pytestmark = pytest.mark.slow


def test_16_processes_mixed_operations_on_one_directory(
    tmp_path: Path, workers: Workers, runs: Runs
) -> None:
    directory = str(tmp_path / "c")
    count = runs(1000, 5000)
    procs = [workers.start("mixed", directory, i, count, i) for i in range(16)]
    for proc in procs:  # start together
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    reports = []
    for i, proc in enumerate(procs):
        reports.append(workers.finish(proc, timeout=600))
        runs.progress("processes finished", i + 1, len(procs))

    written = {(key, writer, seq) for r in reports for key, writer, seq in r["writes"]}
    reads = [tuple(read) for r in reports for read in r["reads"]]
    for r in reports:
        assert r["bad"] == [], r["bad"][:5]
        assert r["warnings"] == [], r["warnings"][:5]
        assert r["stats"]["disk_errors"] == 0
        assert r["stats"]["disk_corrupt"] == 0
    never_written = [read for read in reads if read not in written]
    assert never_written == [], f"reads of values nobody wrote: {never_written[:5]}"
    assert len(reads) > 16 * count // 4, "too few reads hit a value: the test proves little"
    cross = sum(1 for r in reports for _, writer, _ in r["reads"] if writer != r["worker"])
    assert cross > 0, "no process ever read another's value: the processes did not share"
    timeouts = sum(r["stats"]["disk_lock_timeouts"] for r in reports)
    print(f"16 x {count} ops: {len(reads)} reads checked, disk lock timeouts absorbed: {timeouts}")
