"""Figures: ``text_overlaps`` finds colliding labels, and no figure an experiment draws from the
committed results has two labels on top of each other."""

from pathlib import Path

import pytest

from cmtheory import report
from cmtheory.cli import _experiments, _profile_of
from cmtheory.report import plt, text_overlaps
from cmtheory.sweep import load_results
ROOT = Path(__file__).resolve().parents[1]


def test_text_overlaps_finds_two_labels_drawn_on_each_other():
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.text(0.5, 0.5, "first label", transform=ax.transAxes)
    ax.text(0.52, 0.5, "second label", transform=ax.transAxes)
    ax.text(0.05, 0.1, "apart", transform=ax.transAxes)
    assert text_overlaps(fig) == [("first label", "second label")]
    plt.close(fig)


def test_text_overlaps_sees_crowded_tick_labels_and_not_spaced_ones():
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.set_xticks(range(12), [f"label {i}" for i in range(12)])
    assert len(text_overlaps(fig)) >= 10  # 12 labels of ~35 px on a ~150 px axis: each touches its neighbours
    ax.set_xticks(range(0, 12, 6), ["a", "b"])
    assert text_overlaps(fig) == []
    plt.close(fig)


@pytest.mark.parametrize("name", sorted(_experiments("all")))
def test_experiment_figures_have_no_overlapping_labels(name, tmp_path, monkeypatch):
    df = load_results(name, ROOT / "results")
    if df.empty:
        pytest.skip(f"no committed results/{name}.csv")
    mod = _experiments(name)[name]
    overlaps = {}

    def checked_save(fig, figures_dir, fig_name):
        overlaps[fig_name] = text_overlaps(fig)
        return report.save_figure(fig, figures_dir, fig_name)

    monkeypatch.setattr(mod, "save_figure", checked_save)
    mod.checks(df, str(tmp_path), _profile_of(df, mod))
    assert overlaps, f"{name}.checks drew no figure"
    assert all(not v for v in overlaps.values()), f"overlapping labels in {name}'s figures: {overlaps}"
