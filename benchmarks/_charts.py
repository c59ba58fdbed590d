"""PNG charts of a results dict (matplotlib with the Agg backend, imported only here).

Every bar chart has a linear axis that starts at zero, so a bar's length is its value and two
bars compare by length. Counts get whole-number ticks. Each title says which way is better.
The speed-targets chart draws every target, however many there are, against its own goal.
"""

from __future__ import annotations

import math
import os
import re
import textwrap
from typing import Any

import _harness as h

TIERED = "#1f77b4"  # tiered-cache's bars
BASELINE = "#555555"  # a hand-written baseline
PEER = "#b0b0b0"  # every other library
PASS = "#2ca02c"
SHORT = "#d62728"
NOT_MEASURED = "#b0b0b0"
LABEL_WIDTH = 52  # characters per line of a bar's label, wrapped at word boundaries
SERVICES = {"ssm": "SSM", "secretsmanager": "Secrets Manager", "s3": "S3"}


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _wrap(label: str, width: int = LABEL_WIDTH) -> str:
    return "\n".join(
        textwrap.wrap(label, width, break_long_words=False, break_on_hyphens=False) or [""]
    )


def _title(fig: Any, title: str) -> None:
    """The chart's title across the whole figure, from its left edge, wrapped so it fits."""
    text = "\n".join(_wrap(part, 105) for part in title.split("\n"))
    fig.suptitle(text, x=0.01, ha="left", fontsize=10)


def _colour(label: str) -> str:
    if label.startswith("tiered"):
        return TIERED
    if label.startswith(("baseline", "hand-written", "floor")):
        return BASELINE
    return PEER


def _fmt(value: float, integer: bool) -> str:
    if integer:
        return f"{value:,.0f}"
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


def _bars(
    path: str,
    title: str,
    labels: list[str],
    values: list[float],
    xlabel: str,
    integer: bool = False,
    suffix: str = "",
    reference: tuple[float, str] | None = None,
    label_width: int = LABEL_WIDTH,
) -> str:
    """Horizontal bars on a linear axis from zero, each labelled with its value.

    ``integer``: whole-number ticks (counts). ``reference``: a dashed vertical line at a value
    with its own label (the floor, one load per TTL)."""
    plt = _plt()
    from matplotlib.ticker import MaxNLocator

    wrapped = [_wrap(lab, label_width) for lab in labels]
    lines = sum(w.count("\n") + 1 for w in wrapped)
    fig, ax = plt.subplots(figsize=(10, 0.16 * lines + 0.24 * len(labels) + 1.6))
    ax.barh(range(len(labels)), values, color=[_colour(lab) for lab in labels])
    ax.set_yticks(range(len(labels)), wrapped, fontsize=8)
    ax.invert_yaxis()
    top = max([v for v in values if math.isfinite(v)] + [reference[0] if reference else 0, 0])
    ax.set_xlim(0, (top or 1) * 1.15)
    if integer:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.xaxis.set_major_formatter(
        plt.FuncFormatter(lambda v, _: f"{v:,.0f}" if integer or v >= 10 else f"{v:g}")
    )
    if reference is not None:  # a row of its own above the bars for the line's label
        ax.set_ylim(len(labels) - 0.5, -1.1)
        ax.axvline(reference[0], color="black", linestyle="--", linewidth=1)
        ax.annotate(
            reference[1],
            (reference[0], -0.75),
            xytext=(4, 0),
            textcoords="offset points",
            fontsize=8,
            va="center",
        )
    ax.set_xlabel(xlabel)
    _title(fig, title)
    for i, v in enumerate(values):
        _value_label(ax, v, i, f"{_fmt(v, integer)}{suffix}")
    ax.grid(axis="x", color="#e0e0e0", linewidth=0.6)
    ax.set_axisbelow(True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _value_label(ax: Any, x: float, y: float, text: str, **style: Any) -> None:
    """``text`` just right of a bar's end, on a white box so a reference line stays legible."""
    ax.annotate(
        text,
        (x, y),
        xytext=(4, 0),
        textcoords="offset points",
        va="center",
        fontsize=8,
        bbox=_BOX,
        **style,
    )


# -- speed targets ---------------------------------------------------------------------------

_BOX = {"facecolor": "white", "edgecolor": "none", "pad": 0.5, "alpha": 0.85}
_GOAL = re.compile(r"^(within|<=)\s*([\d.]+)\s*(x|%|ms)?")


def goal_of(target: dict[str, Any]) -> tuple[float, str, str] | None:
    """(goal value, kind "max" or "within", unit "x", "%" or "ms") of a speed target.

    Targets carry ``goal_value``, ``kind`` and ``unit``; results written before they did are
    read from the goal's text ("<= 3x", "<= 40%", "<= 30 ms above", "within 20%")."""
    if target.get("goal_value") is not None:
        return float(target["goal_value"]), target.get("kind", "max"), target.get("unit", "x")
    m = _GOAL.match(str(target.get("goal", "")).strip())
    if not m:
        return None
    value, unit = float(m.group(2)), m.group(3) or "x"
    if unit == "%":
        value /= 100
    if m.group(1) == "within":
        return value, "within", "x"
    return value, "max", unit


def goal_share(target: dict[str, Any]) -> float | None:
    """How much of its goal a target used: 1.0 is exactly at the goal, below 1 meets it.

    "max" goals: measured / goal (a negative measurement counts as 0). "within" goals: the
    distance from 1.0 over the allowed distance. None when not measured or no goal is known."""
    measured, goal = target.get("measured"), goal_of(target)
    if measured is None or goal is None or not math.isfinite(measured) or goal[0] <= 0:
        return None
    value, kind, _ = goal
    if kind == "within":
        return abs(measured - 1.0) / value
    return max(0.0, measured) / value


def speed_targets(path: str, targets: list[dict[str, Any]]) -> str:
    """One row per target, every target drawn: the bar is the share of its goal it used, on a
    linear axis from zero with the goal at 1.0; green and "PASS" when met, red and "SHORT"
    when not, a grey "n/a" when not measured."""
    plt = _plt()
    from matplotlib.patches import Patch

    labels = [f"{_wrap(t['target'], 52)}\ngoal: {t['goal']}" for t in targets]
    shares = [goal_share(t) for t in targets]
    lines = sum(lab.count("\n") + 1 for lab in labels)
    fig, ax = plt.subplots(figsize=(10, 0.16 * lines + 0.28 * len(targets) + 1.9))
    top = max([s for s in shares if s is not None] + [1.0])
    for i, (t, share) in enumerate(zip(targets, shares, strict=True)):
        verdict = t.get("verdict", "n/a")
        if share is None:
            _value_label(ax, 0.0, i, "n/a: not measured", color="#555555")
            continue
        colour = PASS if verdict == "PASS" else SHORT if verdict == "SHORT" else NOT_MEASURED
        ax.barh(i, share, color=colour, height=0.6)
        _value_label(
            ax,
            share,
            i,
            f"{t['shown']}  {verdict}",
            color=colour if verdict in ("PASS", "SHORT") else "black",
            fontweight="bold",
        )
    ax.axvline(1.0, color="black", linestyle="--", linewidth=1.2)
    ax.annotate(
        "goal", (1.0, -0.75), xytext=(4, 0), textcoords="offset points", fontsize=8, va="center"
    )
    ax.set_yticks(range(len(targets)), labels, fontsize=8)
    ax.set_ylim(len(targets) - 0.5, -1.1)
    ax.set_xlim(0, top * 1.45)
    ax.set_xlabel(
        "measured ÷ goal (for a 'within' goal: the distance from 1.0x ÷ the allowed distance)"
    )
    passed = sum(t.get("verdict") == "PASS" for t in targets)
    _title(
        fig,
        f"Speed targets: {passed} of {len(targets)} met. Each bar is the share of its own goal "
        "that was used: left of the dashed goal line meets the goal (lower is better)",
    )
    ax.legend(
        handles=[
            Patch(color=PASS, label="PASS: goal met"),
            Patch(color=SHORT, label="SHORT: goal missed"),
        ],
        loc="best",
        fontsize=8,
    )
    ax.grid(axis="x", color="#e0e0e0", linewidth=0.6)
    ax.set_axisbelow(True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# -- all charts ------------------------------------------------------------------------------


def draw(results: dict[str, Any], out: str, mode: str) -> list[str]:
    """Every chart the results have data for; the paths written (``<out>/<mode>-*.png``)."""
    sc = results["scenarios"]
    cfg = results.get("meta", {}).get("config", {})
    made: list[str] = []

    def name(key: str) -> str:
        return os.path.join(out, f"{mode}-{key}.png")

    hits = sc.get("1", {})
    if hits.get("chart"):
        pairs = sorted(hits["chart"], key=lambda x: x[1])
        made.append(
            _bars(
                name("1-hit-path"),
                "Warm hit: time per call in multiples of the floor (dict.get + time.time()),\n"
                "measured in the same process (lower is better)",
                [p[0] for p in pairs],
                [p[1] for p in pairs],
                "x the floor (1 = as fast as a dict lookup and a clock read)",
                suffix="x",
                reference=(1.0, "floor"),
            )
        )
    stream = sc.get("2", {}).get("summary", {})
    ttls = cfg["stream_window_s"] / cfg["ttl"] if cfg.get("ttl") else None
    for key, title, resources in (
        ("params", "an SSM parameter and a secret", 2),
        ("s3", "an S3 object", 1),
    ):
        data = stream.get(key, {})
        if not data:
            continue
        labels = [h.LABELS[lib] for lib in data]
        n = f"{cfg['stream_invocations']:,} invocations" if cfg else "Invocations"
        made.append(
            _bars(
                name(f"2-stream-{key}-calls"),
                f"{n} asking for {title}: origin API calls (lower is better)",
                labels,
                [sum(v["calls"].values()) for v in data.values()],
                "origin API calls ("
                + " + ".join(SERVICES.get(s, s) for s in next(iter(data.values()))["calls"])
                + ")",
                integer=True,
                reference=(ttls * resources, "one load per TTL") if ttls else None,
            )
        )
        made.append(
            _bars(
                name(f"2-stream-{key}-latency"),
                f"{n} asking for {title}: total invocation latency (lower is better)",
                labels,
                [v["total_ms"] / 1e3 for v in data.values()],
                "seconds, summed over the invocations (measured wall time + injected latency)",
                suffix=" s",
            )
        )
    restart = sc.get("3", {}).get("summary", {})
    if restart:
        made.append(
            _bars(
                name("3-restart-calls"),
                "After a runtime restart on the same /tmp: origin calls in the new process "
                "(lower is better)",
                [h.LABELS[k] for k in restart],
                [v["restart_calls"] for v in restart.values()],
                "origin API calls (SSM parameter, secret and S3 object)",
                integer=True,
            )
        )
    large = sc.get("4", {}).get("summary", {})
    if large:
        labels, values = [], []
        for lib, steps in large.items():
            for step, v in steps.items():
                labels.append(f"{h.LABELS[lib]}: {step}")
                values.append(v["body_bytes"] / h.MB)
        size = f"{cfg['large_size'] // h.MB} MB" if cfg.get("large_size") else "Large"
        made.append(
            _bars(
                name("4-large-object-bytes"),
                f"A {size} S3 object: body bytes transferred per step (lower is better)",
                labels,
                values,
                "MB transferred",
                suffix=" MB",
                label_width=64,
            )
        )
    crowd = sc.get("5", {}).get("summary", {})
    if crowd:
        n = cfg.get("crowd_procs", 16)
        made.append(
            _bars(
                name("5-processes-calls"),
                f"{n} processes cold-starting on one /tmp: origin calls in total (lower is better)",
                [h.LABELS[k] for k in crowd],
                [v["total"] for v in crowd.values()],
                "origin API calls, summed over the processes",
                integer=True,
            )
        )
    # "python -c pass" imports nothing: its in-process time is zero by construction
    cold = {k: v for k, v in sc.get("6", {}).get("imports", {}).items() if k != "python -c pass"}
    if cold:
        made.append(
            _bars(
                name("6-import"),
                "Import time in a fresh interpreter, measured in the process (median; lower "
                "is better)",
                list(cold),
                [v["import_ms"] for v in cold.values()],
                "ms from the start of the import statement to its end",
                suffix=" ms",
            )
        )
    targets = sc.get("speed", {}).get("targets", [])
    if targets:
        made.append(speed_targets(name("speed-targets"), targets))
    return made
