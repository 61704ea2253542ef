"""The cmtheory command: list, run (with resume), plot, checks."""

import pytest

from cmtheory.cli import main


def _args(tmp_path):
    return ["--results", str(tmp_path / "results"), "--figures", str(tmp_path / "figures"), "--checks", str(tmp_path / "checks.md")]


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("accelerated", "consistency_training", "direct_cm", "statistical_rate", "scm", "manifold"):
        assert name in out


def test_run_plot_checks_and_resume(tmp_path, capsys):
    args = _args(tmp_path)
    assert main(args + ["run", "manifold", "--profile", "quick", "--quiet"]) == 0
    checks = (tmp_path / "checks.md").read_text()
    assert "| Manifold: TV vs ambient d (DDPM, variance posterior) |" in checks and "| rate observed | n/a |" in checks
    assert "| not yet asymptotic |" in checks and "## How to read the verdicts" in checks
    assert "Departures from the papers" in checks and "not measured" not in checks
    assert (tmp_path / "figures" / "manifold.png").exists() and (tmp_path / "figures" / "manifold.pdf").exists()
    table = (tmp_path / "results" / "manifold.csv").read_text()
    # rerun: every config is cached, so nothing is recomputed and the table is unchanged
    assert main(args + ["run", "manifold", "--quiet"]) == 0
    assert (tmp_path / "results" / "manifold.csv").read_text() == table
    (tmp_path / "figures" / "manifold.png").unlink()
    assert main(args + ["plot", "manifold"]) == 0
    assert (tmp_path / "figures" / "manifold.png").exists()
    assert main(args + ["checks"]) == 0


def test_bad_arguments():
    with pytest.raises(SystemExit, match="unknown experiment"):
        main(["run", "nope"])
    with pytest.raises(SystemExit):
        main(["run", "manifold", "--profile", "huge"])
    with pytest.raises(SystemExit, match="--jobs must be"):
        main(["run", "manifold", "--jobs", "0"])
