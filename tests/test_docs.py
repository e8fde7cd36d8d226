"""Every code example in README.md and docs/ runs, and every output they show is what runs.

Fenced blocks by language:

- ``pycon``: doctest examples (``>>>``), run with doctest (ELLIPSIS, NORMALIZE_WHITESPACE);
- ``python``: executed;
- ``console``: ``$ command`` lines (a trailing backslash continues one), each followed by the
  output it must print (stdout and stderr together, ``...`` for any text: the chaotic digits of
  seed 000, timings);
- ``bash``/``sh``: commands for other machines (installs, GPUs, clusters): each such block, and any
  other block that cannot run here, is preceded by ``<!-- not run: why -->``;
- ``text`` and the rest: diagrams and tables, not code.

A page's examples run in order, in one namespace, in a folder of their own holding the files
they name (``X.npy``, ``y.npy``, ``data.csv``, ``points.csv``), with the numpy backend unless
they choose another and no GPU.
"""

from __future__ import annotations

import doctest
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.M | re.S)
NOT_RUN = re.compile(r"<!--\s*not run:\s*(\S.*?)\s*-->\s*$", re.S)
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
LANGUAGES = {"pycon", "python", "console", "bash", "sh", "text", ""}


def blocks(page: Path) -> list[tuple[int, str, str, str | None]]:
    """``(line, language, code, reason it is not run or None)`` of each fenced block."""
    text = page.read_text()
    out = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip()
        marker = NOT_RUN.search(before[before.rfind("\n") + 1 :]) if before else None
        line = text.count("\n", 0, match.start()) + 1
        out.append((line, match.group(1), match.group(2), marker.group(1) if marker else None))
    return out


def commands(code: str) -> list[tuple[str, str]]:
    """``(command, expected output)`` pairs of a console block."""
    pairs: list[tuple[str, list[str]]] = []
    lines = code.splitlines()
    i = 0
    while i < len(lines):
        if not lines[i].startswith("$ "):
            raise AssertionError(f"console block: output before any command: {lines[i]!r}")
        command = lines[i][2:]
        while command.endswith("\\"):
            i += 1
            command = command[:-1] + " " + lines[i].strip()
        i += 1
        output = []
        while i < len(lines) and not lines[i].startswith("$ "):
            output.append(lines[i])
            i += 1
        pairs.append((command, output))
    return [(c, "\n".join(o) + "\n" if o else "") for c, o in pairs]


def _sandbox(where: Path) -> None:
    """The files the examples name."""
    from xpnet import datasets

    X, y = datasets.load("moons", n_samples=200, noise=0.2, seed=0)
    np.save(where / "X.npy", X)
    np.save(where / "y.npy", y)
    rows = "\n".join(f"{a:.6f},{b:.6f},{int(c)}" for (a, b), c in zip(X, y, strict=True))
    (where / "data.csv").write_text("x1,x2,label\n" + rows + "\n")
    (where / "points.csv").write_text("x1,x2\n0.5,0.25\n-1.0,0.5\n1.5,-0.5\n")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XPNET_", "XLA_FLAGS"))}
    bin_dir = str(Path(sys.executable).parent)
    env.update(COLUMNS="80", JAX_PLATFORMS="cpu", PYTHONHASHSEED="0", NO_COLOR="1",
               PATH=bin_dir + os.pathsep + env.get("PATH", ""))  # fmt: skip
    return env


def _check(want: str, got: str, where: str) -> None:
    checker = doctest.OutputChecker()
    if not checker.check_output(want, got, FLAGS):
        example = doctest.Example("", want)
        raise AssertionError(f"{where}:\n" + checker.output_difference(example, got, FLAGS))


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_every_example_runs_and_shows_what_runs(page, tmp_path, monkeypatch):
    found = blocks(page)
    _sandbox(tmp_path)
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("XPNET_")]:
        monkeypatch.delenv(key)
    namespace: dict[str, object] = {"__name__": "__docs__"}
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    parser = doctest.DocTestParser()
    for line, language, code, reason in found:
        where = f"{page.relative_to(ROOT)}:{line}"
        assert language in LANGUAGES, f"{where}: unknown block language {language!r}"
        if reason is not None or language in ("text", ""):
            continue
        assert language not in ("bash", "sh"), (
            f"{where}: a shell block that is not run: show it as a console block (command and "
            "output) so that it runs, or say why it cannot run with <!-- not run: why -->"
        )  # fmt: skip
        if language == "pycon":
            test = parser.get_doctest(code, namespace, where, str(page), line)
            report: list[str] = []
            result = runner.run(test, out=report.append, clear_globs=False)
            namespace.update(test.globs)  # a doctest runs in a copy: carry its names on
            assert result.failed == 0, "".join(report)
        elif language == "python":
            exec(compile(code, where, "exec"), namespace)
        else:
            for command, want in commands(code):
                done = subprocess.run(command, shell=True, cwd=tmp_path, env=_env(), text=True,
                                      capture_output=True, timeout=900)  # fmt: skip
                _check(want, done.stdout + done.stderr, f"{where}: $ {command}")
    for name in ("moons.png",):
        if (tmp_path / name).exists():
            assert (tmp_path / name).stat().st_size > 1000


def test_the_marker_and_block_rules_catch_what_they_should(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("<!-- not run: needs a GPU -->\n```bash\nxpnet x\n```\n\n```console\n"
                    "$ echo a \\\n  b\na b\n```\n")  # fmt: skip
    (first, second) = blocks(page)
    assert first[3] == "needs a GPU" and second[3] is None
    assert commands(second[2]) == [("echo a  b", "a b\n")]
    with pytest.raises(AssertionError, match=r"Expected"):
        _check("0.5\n", "0.6\n", "here")


def test_no_example_is_left_out_silently():
    """Blocks not run say why, and most examples do run."""
    ran = skipped = 0
    for page in PAGES:
        for _, language, _, reason in blocks(page):
            if language in ("pycon", "python", "console"):
                ran += reason is None
                skipped += reason is not None
    assert ran >= 20 and skipped <= ran // 3, (ran, skipped)


def test_the_docs_site_config_names_every_page():
    config = (ROOT / "mkdocs.yml").read_text()
    for page in (ROOT / "docs").glob("*.md"):
        assert page.name in config, f"{page.name} is not in mkdocs.yml's nav"
