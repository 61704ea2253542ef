"""The cmtheory command: list, run (with resume), plot, checks, checks --verify."""

import shutil

import pandas as pd
import pytest

from cmtheory.cli import main
from cmtheory.sweep import config_key
from experiments import manifold


def _args(tmp_path):
    return ["--results", str(tmp_path / "results"), "--figures", str(tmp_path / "figures"), "--checks", str(tmp_path / "checks.md")]


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("accelerated", "consistency_training", "direct_cm", "statistical_rate", "scm", "manifold"):
        assert name in out


@pytest.fixture(scope="module")
def manifold_run(tmp_path_factory):
    """One quick manifold run (results, figures, checks) shared by the tests that read it, on two
    workers as the main job runs it (one worker took 70 s of a CI run near its 10 minutes)."""
    tmp_path = tmp_path_factory.mktemp("manifold")
    assert main(_args(tmp_path) + ["run", "manifold", "--profile", "quick", "--jobs", "2", "--quiet"]) == 0
    return tmp_path


def test_run_plot_checks_and_resume(manifold_run, tmp_path):
    shutil.copytree(manifold_run, tmp_path, dirs_exist_ok=True)
    args = _args(tmp_path)
    checks = (tmp_path / "checks.md").read_text()
    assert "| Manifold: TV vs ambient d (DDPM, variance posterior) |" in checks and "| rate observed | n/a |" in checks
    assert "| not yet asymptotic |" in checks and "## How to read the verdicts" in checks
    assert "Departures from the papers" in checks and "not measured" not in checks
    assert (tmp_path / "figures" / "manifold.png").exists() and (tmp_path / "figures" / "manifold.pdf").exists()
    table = (tmp_path / "results" / "manifold.csv").read_text()
    written = [p for p in tmp_path.rglob("*") if p.is_file() and ".lock" not in p.name]
    stamps = {p: p.stat().st_mtime_ns for p in written}
    # rerun: every config is cached, so nothing is recomputed and no file is rewritten (the
    # table, the figures and the checks come out byte-identical), as on read-only storage
    assert main(args + ["run", "manifold", "--quiet"]) == 0
    assert (tmp_path / "results" / "manifold.csv").read_text() == table
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items()), [p.name for p, t in stamps.items() if p.stat().st_mtime_ns != t]
    (tmp_path / "figures" / "manifold.png").unlink()
    assert main(args + ["plot", "manifold"]) == 0
    assert (tmp_path / "figures" / "manifold.png").exists()
    assert main(args + ["checks"]) == 0


def test_checks_verify_reports_an_edited_row(manifold_run, tmp_path, capsys):
    """--verify reruns the cheap subset (manifold: smallest d and T, 8 configs) bit for bit; after
    a recorded value is edited it names that row and exits 1."""
    shutil.copytree(manifold_run, tmp_path, dirs_exist_ok=True)
    args = _args(tmp_path)
    assert main(args + ["checks", "--verify"]) == 0
    out = capsys.readouterr().out
    assert "manifold: 8 configs rerun" in out and "every rerun value agrees" in out and "accelerated: no table" in out
    table_path = tmp_path / "results" / "manifold.csv"
    table = pd.read_csv(table_path)
    key = config_key(manifold.verify_configs("quick")[0])
    table.loc[(table["config_key"] == key) & (table["metric"] == "tv"), "value"] *= 1.001
    table.to_csv(table_path, index=False)
    assert main(args + ["checks", "--verify"]) == 1
    out = capsys.readouterr().out
    assert f"differs: config {key[:12]} row 0 (tv), value" in out and "verify: 1 values differ" in out


def test_errors_are_messages_not_tracebacks(tmp_path, capsys):
    """A Dask scheduler that does not answer, or a run refused for its input, ends with
    'cmtheory: error: ...' and exit status 2."""
    assert main(_args(tmp_path) + ["run", "manifold", "--scheduler", "tcp://127.0.0.1:9", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "cmtheory: error: cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'" in err and "Traceback" not in err


def test_bad_arguments():
    with pytest.raises(SystemExit, match="unknown experiment"):
        main(["run", "nope"])
    with pytest.raises(SystemExit):
        main(["run", "manifold", "--profile", "huge"])
    with pytest.raises(SystemExit, match="--jobs must be"):
        main(["run", "manifold", "--jobs", "0"])
