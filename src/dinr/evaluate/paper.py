"""The paper's comparison table: mean PSNR / SSIM / wall time per method per scan, as
Markdown and as LaTeX (booktabs), from the scans' ``metrics.json`` reports."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dinr.evaluate.figures import LABELS


def method_wall(wall: dict[str, float], method: str) -> float:
    """A method's wall seconds from its stages' benchmarks (DINR: training plus rendering)."""
    return wall["train"] + wall["render"] if method == "dinr" else wall[method]


def comparison_rows(reports: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """The methods (in the first report's order) and one row per report:
    ``{dataset, cells: {method: (psnr, ssim, wall_s)}, best}`` with the best PSNR's method."""
    methods = list(reports[0]["methods"])
    rows = []
    for report in reports:
        scores = report["methods"]
        cells = {m: (scores[m]["psnr_mean"], scores[m]["ssim_mean"], method_wall(report["wall_s"], m))
                 for m in methods if m in scores}
        rows.append({"dataset": report["dataset"], "cells": cells, "best": max(cells, key=lambda m: cells[m][0])})
    return methods, rows


def _cells(row: dict[str, Any], methods: list[str], missing: str,
           text: Callable[[float, float, float, bool], str]) -> list[str]:
    """One table cell per method of a :func:`comparison_rows` row: ``text(psnr, ssim,
    wall_s, is_best)``, or ``missing`` for a method the scan lacks."""
    return [text(*row["cells"][m], m == row["best"]) if m in row["cells"] else missing for m in methods]


def markdown_table(reports: list[dict[str, Any]]) -> str:
    """One line per scan; each method's mean PSNR (dB) / SSIM (wall s); the best PSNR in bold."""
    methods, rows = comparison_rows(reports)
    lines = ["| scan | " + " | ".join(LABELS.get(m, m) for m in methods) + " |", "|---" * (len(methods) + 1) + "|"]
    for row in rows:
        cells = _cells(row, methods, "–", lambda psnr, ssim, wall, best: (
            f"**{psnr:.2f} / {ssim:.3f} ({wall:.0f} s)**" if best else f"{psnr:.2f} / {ssim:.3f} ({wall:.0f} s)"))
        lines.append(f"| {row['dataset']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n\nMean PSNR (dB) / mean SSIM (wall time) per method; best PSNR in bold.\n"


def latex_table(reports: list[dict[str, Any]]) -> str:
    """The same table as a LaTeX ``tabular`` (needs ``booktabs``): PSNR, SSIM and wall
    seconds per method, the best PSNR in bold."""
    methods, rows = comparison_rows(reports)
    columns = "l" + "rrr" * len(methods)
    head = " & ".join(rf"\multicolumn{{3}}{{c}}{{{LABELS.get(m, m)}}}" for m in methods)
    rules = "".join(rf"\cmidrule(lr){{{2 + 3 * k}-{4 + 3 * k}}}" for k in range(len(methods)))
    units = " & ".join(["PSNR & SSIM & s"] * len(methods))
    lines = [rf"\begin{{tabular}}{{{columns}}}", r"\toprule", rf"scan & {head} \\", rules, rf" & {units} \\",
             r"\midrule"]
    for row in rows:
        cells = _cells(row, methods, "-- & -- & --", lambda psnr, ssim, wall, best: (
            (rf"\textbf{{{psnr:.2f}}}" if best else f"{psnr:.2f}") + f" & {ssim:.3f} & {wall:.0f}"))
        name = row["dataset"].replace("_", r"\_")
        lines.append(f"{name} & " + " & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"
