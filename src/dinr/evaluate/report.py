"""The metrics report as a Markdown table."""

from __future__ import annotations

#: Per-method keys of ``metrics.json`` that are not figures of merit to tabulate.
_NOT_TABULATED = ("per_frame", "worst_frame")


def metrics_table(report: dict[str, object]) -> str:
    """A markdown table of the mean metrics of each method (and, against a truth, its
    worst, first and last frame's PSNR), DINR's margin over the best peer on the mean and
    in its worst frame, then the wall time of each stage, from a report as
    ``dinr evaluate`` writes it to ``metrics.json``."""
    methods: dict[str, dict[str, object]] = report["methods"]  # type: ignore[assignment]
    keys = [k for k in next(iter(methods.values())) if k not in _NOT_TABULATED]
    lines = [f"# {report['dataset']}", "", "| method | " + " | ".join(keys) + " |",
             "|---|" + "---|" * len(keys)]
    for name, values in methods.items():
        lines.append(f"| {name} | " + " | ".join(f"{float(values[k]):.4g}" for k in keys) + " |")  # type: ignore[arg-type]
    margin: dict[str, object] | None = report.get("dinr_margin")  # type: ignore[assignment]
    if margin:
        lines += ["", f"DINR minus the best peer: {margin['mean']:+.2f} dB on the mean (over "
                      f"{margin['best_mean_peer']}), {margin['worst_frame']:+.2f} dB in its worst frame "
                      f"(frame {margin['worst_frame_index']}, against that frame's best peer)."]
    wall: dict[str, float] = report["wall_s"]  # type: ignore[assignment]
    lines += ["", "| stage | wall s |", "|---|---|"] + [f"| {k} | {v:.1f} |" for k, v in wall.items()]
    return "\n".join(lines) + "\n"
