"""PNG charts of a results dict (matplotlib with the Agg backend, imported only here)."""

from __future__ import annotations

import os
from typing import Any

import _harness as h


def _bars(
    path: str,
    title: str,
    labels: list[str],
    values: list[float],
    xlabel: str,
    log: bool = False,
    highlight: str = "tiered",
) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 0.42 * len(labels) + 1.4))
    colors = ["#1f77b4" if highlight and lab.startswith(highlight) else "#9e9e9e" for lab in labels]
    ax.barh(range(len(labels)), values, color=colors)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.invert_yaxis()
    if log:
        from matplotlib.ticker import NullFormatter, ScalarFormatter

        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    for i, v in enumerate(values):
        ax.text(v, i, f" {v:,.3g}", va="center", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def draw(results: dict[str, Any], out: str, mode: str) -> list[str]:
    sc = results["scenarios"]
    made: list[str] = []

    def name(key: str) -> str:
        return os.path.join(out, f"{mode}-{key}.png")

    hits = sc.get("1", {})
    if hits.get("chart"):
        pairs = sorted(hits["chart"], key=lambda x: x[1])
        made.append(
            _bars(
                name("1-hit-path"),
                "Warm hit, x the floor (dict.get + time.time()) in the same process",
                [p[0] for p in pairs],
                [p[1] for p in pairs],
                "x floor (log scale; lower is better)",
                log=True,
            )
        )
    stream = sc.get("2", {}).get("summary", {})
    for key, title in (("params", "SSM + secret"), ("s3", "S3 object")):
        data = stream.get(key, {})
        if data:
            labels = [h.LABELS[lib] for lib in data]
            made.append(
                _bars(
                    name(f"2-stream-{key}-calls"),
                    f"Invocation stream ({title}): origin calls (lower is better)",
                    labels,
                    [sum(v["calls"].values()) for v in data.values()],
                    "origin API calls",
                    log=True,
                )
            )
            made.append(
                _bars(
                    name(f"2-stream-{key}-latency"),
                    f"Invocation stream ({title}): total invocation latency",
                    labels,
                    [v["total_ms"] / 1e3 for v in data.values()],
                    "seconds, wall + injected (log scale)",
                    log=True,
                )
            )
    restart = sc.get("3", {}).get("summary", {})
    if restart:
        made.append(
            _bars(
                name("3-restart-calls"),
                "After a runtime restart on the same /tmp: origin calls",
                [h.LABELS[k] for k in restart],
                [v["restart_calls"] for v in restart.values()],
                "origin API calls in the new process",
            )
        )
    large = sc.get("4", {}).get("summary", {})
    if large:
        labels, values = [], []
        for lib, steps in large.items():
            for step, v in steps.items():
                labels.append(f"{h.LABELS[lib]}: {step}")
                values.append(v["body_bytes"] / h.MB)
        made.append(
            _bars(
                name("4-large-object-bytes"),
                "Large S3 object: body bytes transferred per step",
                labels,
                values,
                "MB transferred",
            )
        )
    crowd = sc.get("5", {}).get("summary", {})
    if crowd:
        made.append(
            _bars(
                name("5-processes-calls"),
                "16 processes cold-starting on one /tmp: origin calls in total",
                [h.LABELS[k] for k in crowd],
                [v["total"] for v in crowd.values()],
                "origin API calls",
            )
        )
    cold = sc.get("6", {}).get("imports", {})
    if cold:
        made.append(
            _bars(
                name("6-import"),
                "Import time in a fresh interpreter (in-process, median)",
                list(cold),
                [v["import_ms"] for v in cold.values()],
                "ms",
            )
        )
    speed = sc.get("speed", {}).get("targets", [])
    if speed:
        shown = [t for t in speed if t["measured"] is not None and t["goal"].endswith("x")]
        if shown:
            made.append(
                _bars(
                    name("speed-targets"),
                    "Speed targets (ratio; goal in label)",
                    [f"{t['target'][:60]} ({t['goal']})" for t in shown],
                    [t["measured"] for t in shown],
                    "measured ratio",
                    highlight="",
                )
            )
    return made
