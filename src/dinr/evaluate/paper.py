"""The paper's comparison tables, from the scans' ``metrics.json`` reports: mean PSNR /
SSIM / wall time per method per scan, as Markdown and as LaTeX (booktabs), and frame by
frame (each method's worst, first and last frame, DINR's margin over the best peer on
the mean and in its worst frame) as Markdown."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dinr.evaluate.figures import LABELS
from dinr.evaluate.frames import OURS, margins


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


def frames_table(reports: list[dict[str, Any]]) -> str:
    """One line per scan with truth: each method's worst / first / last frame PSNR (dB)
    and DINR's margin over the best peer, on the mean and in its worst frame (against
    that frame's best peer, :func:`dinr.evaluate.frames.margins`); empty without truth."""
    scored = [r for r in reports if margins(r["methods"])]
    if not scored:
        return ""
    methods = [m for m in scored[0]["methods"] if "psnr_worst" in scored[0]["methods"][m]]
    lines = ["| scan | " + " | ".join(LABELS.get(m, m) for m in methods) + " | DINR - best: mean | worst frame |",
             "|---" * (len(methods) + 3) + "|"]
    for report in scored:
        scores = report["methods"]
        cells = [f"{scores[m]['psnr_worst']:.2f} / {scores[m]['psnr_first']:.2f} / {scores[m]['psnr_last']:.2f}"
                 if m in scores else "–" for m in methods]
        margin = margins(scores)
        lines.append(f"| {report['dataset']} | " + " | ".join(cells)
                     + f" | {margin['mean']:+.2f} | {margin['worst_frame']:+.2f} (frame {margin['worst_frame_index']}) |")
    return "\n".join(lines) + (f"\n\nPSNR (dB) of each method's worst / first / last frame; {LABELS.get(OURS, OURS)}'s "
                               "margin over the best peer on the mean, and in its worst frame over the best peer of "
                               "that frame.\n")
