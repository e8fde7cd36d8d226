"""The plots xpnet writes: axes named after the features, a legend entry per class."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib")
from xpnet import datasets, plotting


def _captured(monkeypatch):
    figures = []
    save = plotting._save

    def keep(plt, fig, path, dpi=100):
        figures.append([(ax.get_xlabel(), ax.get_ylabel(),
                         [t.get_text() for t in ax.get_legend().get_texts()] if ax.get_legend() else None)
                        for ax in fig.axes if ax.get_visible()])  # fmt: skip
        return save(plt, fig, path, dpi)

    monkeypatch.setattr(plotting, "_save", keep)
    return figures


def test_boundaries_name_their_axes_and_classes(tmp_path, monkeypatch):
    figures = _captured(monkeypatch)
    X = np.random.RandomState(0).randn(30, 2)
    y = np.array(["cat", "dog", "eel"])[np.arange(30) % 3]

    def predict(P):
        return np.where(P[:, 0] > 0, "cat", "dog")

    plotting.decision_boundary(predict, X, y, tmp_path / "a.png", step=0.1,
                               feature_names=["length", "width"])  # fmt: skip
    plotting.sweep_panels([("one", predict), ("two", predict), ("three", predict)], X, y,
                          tmp_path / "b.png", step=0.1)  # fmt: skip
    assert figures[0] == [("length", "width", ["class cat", "class dog", "class eel"])]
    assert figures[1] == [("x1", "x2", ["class cat", "class dog", "class eel"])] * 3
    assert (tmp_path / "a.png").stat().st_size > 1000


def test_data_sets_give_their_feature_names(tmp_path):
    (tmp_path / "d.csv").write_text("length,width,species\n1,2,a\n3,4,b\n")
    assert datasets.feature_names(f"csv:{tmp_path / 'd.csv'}", "species") == ["length", "width"]
    assert datasets.feature_names(f"csv:{tmp_path / 'd.csv'}") == ["length", "width"]
    (tmp_path / "n.csv").write_text("1,2,0\n3,4,1\n")
    assert datasets.feature_names(f"csv:{tmp_path / 'n.csv'}") is None
    assert datasets.feature_names("moons") is None
    pytest.importorskip("sklearn")
    assert datasets.feature_names("iris")[0] == "sepal length (cm)"
