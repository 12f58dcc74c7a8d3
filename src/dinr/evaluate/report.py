"""The metrics report as a Markdown table."""

from __future__ import annotations


def metrics_table(report: dict[str, object]) -> str:
    """A markdown table of the mean metrics of each method, then the wall time of each
    stage, from a report as ``dinr evaluate`` writes it to ``metrics.json``."""
    methods: dict[str, dict[str, object]] = report["methods"]  # type: ignore[assignment]
    keys = [k for k in next(iter(methods.values())) if k != "per_frame"]
    lines = [f"# {report['dataset']}", "", "| method | " + " | ".join(keys) + " |",
             "|---|" + "---|" * len(keys)]
    for name, values in methods.items():
        lines.append(f"| {name} | " + " | ".join(f"{float(values[k]):.4g}" for k in keys) + " |")  # type: ignore[arg-type]
    wall: dict[str, float] = report["wall_s"]  # type: ignore[assignment]
    lines += ["", "| stage | wall s |", "|---|---|"] + [f"| {k} | {v:.1f} |" for k, v in wall.items()]
    return "\n".join(lines) + "\n"
