"""The benchmark's output and the quick-start example, as a reader meets them.

- Terminal tables and prose fit in 100 columns and never cut a word; the report file keeps
  every column and note in full.
- The committed full run re-renders (``run.py --from-json``) without measuring anything.
- The speed-targets chart draws every target against its own goal, however many there are.
- ``examples/quickstart.py`` shows a real expiry and an invalidate, and leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
FULL_JSON = BENCH / "results" / "full.json"
sys.path.insert(0, str(BENCH))

import _charts  # noqa: E402  (matplotlib is imported only when a chart is drawn)
import _harness as h  # noqa: E402
import run  # noqa: E402

WORDS = re.compile(r"[^\s|]+")


def words(text: str) -> list[str]:
    return WORDS.findall(text)


def widest(text: str) -> int:
    return max(len(line) for line in text.splitlines())


LONG_NOTE = (
    "S3 files at /tmp/<entry_name> (not configurable); a new boto3 client per miss, which "
    "is what a reader needs to see in full rather than cut at seventy characters"
)


def test_text_table_fits_100_columns_and_wraps_whole_words() -> None:
    rows = [
        ["tiered-cache (ssm / secrets_manager / s3)", "1.000", "12.30x", LONG_NOTE],
        ["lambda-cache 0.8.1", "0.078", "8.20x", "short note"],
    ]
    text = h.text_table("A title " * 30, ["library", "vs none", "x floor", "note"], rows)
    assert widest(text) <= 100
    # every word of every cell and of the title is printed whole, in order
    for cell in [*rows[0], *rows[1]]:
        for word in words(cell):
            assert re.search(rf"(?<!\S){re.escape(word)}(?!\S)", text), word
    assert "p\n" not in text  # the old cut: "a new boto3 client p"


def test_text_table_right_aligns_numbers() -> None:
    text = h.text_table("t", ["library", "calls"], [["a", "3"], ["bb", "3000"]])
    lines = text.splitlines()
    assert lines[-2].endswith("   3")
    assert lines[-1].endswith("3000")


def test_wrap_never_cuts_a_word_even_a_long_one() -> None:
    path = "/tmp/" + "x" * 120
    text = h.wrap(f"see {path} and then the rest of a sentence " * 5, width=60)
    assert path in text.split("\n")
    assert all(len(line) <= 60 for line in text.splitlines() if path not in line)


def test_markdown_table_keeps_every_column_and_the_note_in_full() -> None:
    md = h.table("t", ["library", "note"], [["lambda-cache 0.8.1", LONG_NOTE]], notes="prose")
    assert LONG_NOTE in md
    assert md.rstrip().endswith("prose")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench-out")
    argv = ["--from-json", str(FULL_JSON), "--out", str(out), "--no-charts"]
    proc = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), *argv],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    return {"proc": proc, "md": (out / "full.md").read_text(), "out": out}


def test_full_run_re_renders_to_100_columns_with_the_notes_in_the_report(
    rendered: dict[str, Any],
) -> None:
    proc = rendered["proc"]
    assert proc.returncode == 0, proc.stderr
    assert widest(proc.stdout) <= 100
    md = rendered["md"]
    notes = [
        r["second"]["note"]
        for reps in json.loads(FULL_JSON.read_text())["scenarios"]["3"]["runs"].values()
        for r in reps
        if r["second"].get("note")
    ]
    assert notes
    for note in notes:  # in the report file, whole: wrapped lines joined again
        assert note in " ".join(md.split()), note
    for scenario in ("### 1.", "### 2a.", "### 2b.", "### 3.", "### 4.", "### 5.", "### 6a."):
        assert scenario in md


def test_no_internal_references_in_output_or_report(rendered: dict[str, Any]) -> None:
    for text in (rendered["proc"].stdout, rendered["md"]):
        assert not re.search(r"\bissues? \d", text, re.IGNORECASE)


def test_from_json_leaves_the_json_as_it_was(tmp_path: Path) -> None:
    copy = tmp_path / "full.json"
    copy.write_bytes(FULL_JSON.read_bytes())
    assert run.main(["--from-json", str(copy), "--no-charts"]) == 0
    assert copy.read_bytes() == FULL_JSON.read_bytes()
    assert (tmp_path / "full.md").exists()


# -- the speed-targets chart -----------------------------------------------------------------


def target(name: str, measured: float | None, goal: str, verdict: str) -> dict[str, Any]:
    return {"target": name, "goal": goal, "measured": measured, "shown": f"{measured}",
            "verdict": verdict}  # fmt: skip


@pytest.mark.parametrize(
    ("t", "share"),
    [
        (target("a", 2.4, "<= 1.5x", "SHORT"), 1.6),
        (target("b", 0.31, "<= 40%", "PASS"), 0.775),
        (target("c", 5.8, "<= 30 ms above", "PASS"), 5.8 / 30),
        (target("d", -2.0, "<= 30 ms above", "PASS"), 0.0),
        (target("e", 1.02, "within 20%", "PASS"), 0.1),
        (target("f", 0.9, "within 20%", "PASS"), 0.5),
        (target("g", None, "<= 3x", "n/a"), None),
        (target("h", float("nan"), "<= 3x", "n/a"), None),
    ],
)
def test_goal_share_reads_every_kind_of_goal(t: dict[str, Any], share: float | None) -> None:
    got = _charts.goal_share(t)
    assert got == share if share is None else got == pytest.approx(share)


def test_goal_share_prefers_the_numeric_goal_fields() -> None:
    t = {**target("x", 2.0, "<= 3x", "PASS"), "goal_value": 4.0, "kind": "max", "unit": "x"}
    assert _charts.goal_share(t) == pytest.approx(0.5)


@pytest.mark.parametrize("n", [1, 9, 25])
def test_speed_chart_draws_every_target_and_grows_with_them(tmp_path: Path, n: int) -> None:
    pytest.importorskip("matplotlib")
    from matplotlib.image import imread

    targets = [
        target(f"target number {i} with a long name " * 3, 1.0 + i / 10, "<= 2x", "PASS")
        for i in range(n)
    ]
    path = _charts.speed_targets(str(tmp_path / "s.png"), targets)
    height = imread(path).shape[0]
    assert height > 60 * n  # every row has room: the figure grows with the targets


def test_every_chart_of_the_full_run_is_drawn(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    results = json.loads(FULL_JSON.read_text())
    made = _charts.draw(results, str(tmp_path), "full")
    names = sorted(os.path.basename(p) for p in made)
    assert "full-speed-targets.png" in names
    assert len(names) == 10
    assert all(os.path.getsize(p) > 10_000 for p in made)


# -- the quick-start example -----------------------------------------------------------------


def test_quickstart_shows_expiry_and_invalidate_and_cleans_up(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    env.pop("TIERED_CACHE_DIR", None)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    runs = [int(m) for m in re.findall(r"the function has run (\d+)x", proc.stdout)]
    # miss, memory hit, (fresh process: disk hit), expiry reloads, hit, invalidate reloads
    assert runs == [1, 1, 2, 2, 3]
    assert "1 disk hit, no load" in proc.stdout
    assert widest(proc.stdout) <= 100
    assert list(tmp_path.iterdir()) == []  # the temporary directory is gone
