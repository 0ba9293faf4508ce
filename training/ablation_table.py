"""The ablation table of the model card from ``training/ablation.sh``'s output: one row per trained variant and
strength (mean over the CT-MRI validation pairs), with the mean and select rules of the same run beside them.

    python training/ablation_table.py out/ablation full no_gate ...
"""
from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for _path in (REPO, REPO / "monai_bundle"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from training.report import DECIMALS, DOMINANCE_METRICS, read_csv, summarize  # noqa: E402


def table(root: Path, rows: list[str]) -> list[str]:
    """Markdown lines: the rules once (from the first row's run), then every row's network at each strength."""
    header = ["| variant | " + " | ".join(DOMINANCE_METRICS) + " |", "|---|" + "---|" * len(DOMINANCE_METRICS)]
    lines: list[str] = []
    rules_done = False
    for name in rows:
        csv_path = root / name / "bench" / "metrics.csv"
        if not csv_path.exists():
            lines.append(f"| {name} | not run |" + " |" * (len(DOMINANCE_METRICS) - 1))
            continue
        data = read_csv(csv_path)
        methods = list(dict.fromkeys(row["method"] for row in data))
        summary = summarize(data, methods)
        shown = methods if not rules_done else [m for m in methods if m.startswith("wdualmine")]
        rules_done = True
        for method in shown:
            label = f"{name} {method.replace('wdualmine', 'λ')}" if method.startswith("wdualmine") else method
            cells = [f"{summary[method][m]['mean']:.{DECIMALS[m]}f}" for m in DOMINANCE_METRICS]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return header + lines


def main() -> None:
    root, rows = Path(sys.argv[1]), sys.argv[2:]
    print("\n".join(table(root, rows)))


if __name__ == "__main__":
    main()
