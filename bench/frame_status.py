"""Where every scan of ``config/paper.yaml`` stands against issue 24's bar, from the
latest measurement of each at its defaults.

    python bench/frame_status.py --sources bench/results/generalisation.json \\
        bench/results/defaults_initial_auto_64px.json ... bench/results/size.json \\
        --out bench/results/frame_status.json

Each source is a JSON of ``bench/generalisation.py`` (one row per dataset, with
``dinr_margin``) or of ``bench/size.py`` (its ``default`` entries of ``config/paper.yaml``).
A dataset takes its row from the last source that holds it at its defaults (a
generalisation row trained with changed keys, ``--train`` or a ``time_ends`` variant, is
skipped). The bar, per scan: DINR's mean PSNR at least the best peer's + 1 dB with a
higher mean SSIM, and in its worst frame at least 0 dB above the best peer of that frame.
The size bench keeps each method's worst frame, not every frame, so for its scans the
table gives DINR's worst frame against the peers' worst instead (a bound that can pass
where the per-frame margin would not).
Writes the JSON and a Markdown table beside it (``.md``); every row names its source and
the date of the source's last commit.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "config" / "paper.yaml"
#: Issue 24's bar on the mean (dB).
MEAN_MARGIN_DB = 1.0


def committed(path: Path) -> str:
    """The date of ``path``'s last commit (``uncommitted`` if it has none)."""
    date = subprocess.run(["git", "log", "-1", "--format=%cs", "--", str(path)], cwd=REPO, capture_output=True,
                          text=True).stdout.strip()
    return date or "uncommitted"


def shown(path: Path) -> str:
    """``path`` relative to the repository where it lies inside it."""
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def generalisation_rows(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per dataset at its defaults: the status of a ``bench/generalisation.py`` row."""
    rows = {}
    for row in report["datasets"]:
        if row.get("train") or "time_ends" in row or "dinr_margin" not in row:
            continue  # trained with changed keys (--train, or bench/time_ends.py's variants)
        scores, margin = row["methods"], row["dinr_margin"]
        best = margin["best_mean_peer"]
        peers_ssim = max(v["ssim_mean"] for m, v in scores.items() if m != "dinr")
        rows[row["dataset"]] = {
            "dinr": [scores["dinr"]["psnr_mean"], scores["dinr"]["ssim_mean"]],
            "best_peer": best, "peer": [scores[best]["psnr_mean"], scores[best]["ssim_mean"]],
            "mean_margin": margin["mean"], "ssim_higher": scores["dinr"]["ssim_mean"] > peers_ssim,
            "worst_frame_margin": margin["worst_frame"], "worst_frame": margin["worst_frame_index"],
            "per_frame": True,
            "first_last": [scores["dinr"]["psnr_first"], scores["dinr"]["psnr_last"]],
            "peer_first_last": [scores[best]["psnr_first"], scores[best]["psnr_last"]]}
    return rows


def size_rows(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per dataset of ``config/paper.yaml``: the status of a ``bench/size.py`` default entry."""
    rows = {}
    for entry in report["entries"]:
        if entry.get("variant") != "default" or entry.get("config") != "config/paper.yaml":
            continue
        final, peers = entry["dinr"]["final"], entry["peers"]
        best = max(peers, key=lambda m: peers[m]["psnr_mean"])
        rows[entry["dataset"]] = {
            "dinr": [final["psnr"], final["ssim"]], "best_peer": best,
            "peer": [peers[best]["psnr_mean"], peers[best]["ssim_mean"]],
            "mean_margin": final["psnr"] - peers[best]["psnr_mean"],
            "ssim_higher": final["ssim"] > max(p["ssim_mean"] for p in peers.values()),
            "worst_frame_margin": final["psnr_worst"] - max(p["psnr_worst"] for p in peers.values()),
            "worst_frame": None, "per_frame": False, "first_last": None,
            "peer_first_last": [peers[best]["psnr_first"], peers[best]["psnr_last"]]}
    return rows


def status(sources: list[Path]) -> list[dict[str, Any]]:
    """One row per dataset of ``config/paper.yaml``, in its order (``None`` fields where no
    source holds it at its defaults)."""
    found: dict[str, dict[str, Any]] = {}
    for source in sources:
        report = json.loads(source.read_text())
        rows = size_rows(report) if "entries" in report else generalisation_rows(report)
        where = {"source": shown(source), "source_date": committed(source)}  # one git call a source
        for name, row in rows.items():
            found[name] = {**row, **where}
    out = []
    for name in yaml.safe_load(CONFIG.read_text())["datasets"]:
        row = found.get(name)
        if row:
            row["meets"] = bool(row["mean_margin"] >= MEAN_MARGIN_DB and row["ssim_higher"]
                                and row["worst_frame_margin"] >= 0.0)
        out.append({"dataset": name, **(row or {"source": None})})
    return out


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown: one line per dataset."""
    lines = ["| scan | DINR PSNR / SSIM | best peer (mean) PSNR / SSIM | mean margin (dB) | worst-frame margin (dB) "
             "| first / last: DINR | best peer | meets the bar | source (committed) |", "|---" * 9 + "|"]
    for row in rows:
        if row["source"] is None:
            lines.append(f"| {row['dataset']} | not measured at its defaults | | | | | | | |")
            continue
        worst = (f"{row['worst_frame_margin']:+.2f} (frame {row['worst_frame']})" if row["per_frame"]
                 else f"{row['worst_frame_margin']:+.2f} (worst against worst)")
        ends = f"{row['first_last'][0]:.2f} / {row['first_last'][1]:.2f}" if row["first_last"] else "–"
        ssim = "" if row["ssim_higher"] else ", SSIM NOT higher"
        lines.append(f"| {row['dataset']} | {row['dinr'][0]:.2f} / {row['dinr'][1]:.3f} | {row['best_peer']} "
                     f"{row['peer'][0]:.2f} / {row['peer'][1]:.3f} | {row['mean_margin']:+.2f}{ssim} | {worst} | "
                     f"{ends} | {row['peer_first_last'][0]:.2f} / {row['peer_first_last'][1]:.2f} | "
                     f"{'yes' if row['meets'] else '**no**'} | `{row['source']}` ({row['source_date']}) |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=Path, nargs="+", required=True,
                        help="generalisation or size bench JSONs, oldest first: a later one's row wins")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "frame_status.json")
    args = parser.parse_args()
    missing = [str(path) for path in args.sources if not path.exists()]
    if missing:
        parser.error(f"no such source: {', '.join(missing)}")
    rows = status(args.sources)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"bar": {"mean_margin_db": MEAN_MARGIN_DB, "worst_frame_margin_db": 0.0},
                                    "datasets": rows}, indent=2) + "\n")
    text = table(rows)
    args.out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
