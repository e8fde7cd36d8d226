"""MkDocs hooks: pages made from the code itself, so they cannot drift from it.

- ``<!-- cli-reference -->`` becomes the ``--help`` of every ``xpnet`` command, from the argparse
  parser the command line runs;
- ``<!-- benchmark-plots -->`` becomes the benchmark figures, drawn at build time from the newest
  full CPU report in ``benchmarks/results/`` (the ratios, not only the tables);
- docstrings' Sphinx roles (``:func:`fit```) become links to the API reference (see
  ``docs/griffe_roles.py``).
"""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "docs"))

CLI_MARK = "<!-- cli-reference -->"
PLOTS_MARK = "<!-- benchmark-plots -->"
WORKLOADS = [("a", "rows", "(a) seed 000: 200 × 2, hidden 3, float64"),
             ("b", "rows", "(b) britz-gpu: 5000 × 2, hidden 1000, float32"),
             ("c", "rows", "(c) wide: 60000 × 784 → 256 → 10, float32, full batch"),
             ("c", "epoch_rows", "(c) wide: mini-batch 256, one epoch")]  # fmt: skip


def cli_reference() -> str:
    """Every command's ``--help``, as the parser prints it (80 columns)."""
    os.environ["COLUMNS"] = "80"
    from xpnet import cli

    parser = cli._build_parser()
    sub = next(a for a in parser._actions if a.choices and isinstance(a.choices, dict))
    out = ["## xpnet", "", "```text", parser.format_help().rstrip(), "```", ""]
    for name, command in sub.choices.items():
        out += [f"## xpnet {name}", "", "```text", command.format_help().rstrip(), "```", ""]
    return "\n".join(out)


def newest_report() -> Path:
    """The newest full CPU report (not ``--quick``, not a GPU's, not a single script's)."""
    reports = [p for p in (ROOT / "benchmarks" / "results").glob("*.json")
               if not p.stem.endswith(("-quick", "-gpu", "-digits", "-scaling", "-streaming"))]  # fmt: skip
    full = [p for p in reports if "workloads" in json.loads(p.read_text())]
    return max(full, key=lambda p: json.loads(p.read_text())["meta"]["date"] + p.stem)


def figure(rows: list[dict[str, Any]], title: str) -> bytes:
    """Bars of each implementation's share of the machine's limit (higher is faster), with its
    time per pass written beside it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r.get("of_limit") and not r["impl"].startswith("limit")]
    names = [r["impl"] for r in rows][::-1]
    shares = [100 * r["of_limit"] for r in rows][::-1]
    colors = ["#1f77b4" if n.startswith("xpnet") else "#999999" for n in names]
    fig, ax = plt.subplots(figsize=(7, 0.38 * len(rows) + 1.2))
    bars = ax.barh(names, shares, color=colors)
    for bar, r in zip(bars, rows[::-1], strict=True):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {r['ms']:.4g} ms",
                va="center", fontsize=8)  # fmt: skip
    ax.set_xlabel("share of the limit (%): time at the limit / measured time; xpnet in blue")
    ax.set_xlim(0, max(shares) * 1.25)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def _figures() -> dict[str, bytes]:
    report = json.loads(newest_report().read_text())
    out = {}
    for i, (key, field, title) in enumerate(WORKLOADS):
        rows = report["workloads"].get(key, {}).get(field)
        if rows:
            out[f"images/bench-{i}.png"] = figure(rows, title)
    return out


_FIGURES: dict[str, bytes] = {}


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    _FIGURES.update(_figures())
    for uri, content in _FIGURES.items():
        files.append(File.generated(config, uri, content=content))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if CLI_MARK in markdown:
        markdown = markdown.replace(CLI_MARK, cli_reference())
    if PLOTS_MARK in markdown:
        report = newest_report().relative_to(ROOT)
        images = "\n\n".join(f"![{WORKLOADS[int(u[-5])][2]}]({u})" for u in sorted(_FIGURES))
        markdown = markdown.replace(PLOTS_MARK, f"Drawn from `{report}` when the site is "
                                                f"built:\n\n{images}")  # fmt: skip
    return markdown
