"""Sweep runner: deterministic seeds, parallel = serial, resume, kill -9, Dask."""

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cloudpickle
import pandas as pd
import pytest

import sweep_tasks
from cmtheory.sweep import changed_since, config_key, config_seed, load_results, resolve_device, run_sweep, stale_results, verify_results

cloudpickle.register_pickle_by_value(sweep_tasks)  # loky workers do not see tests/ on sys.path

CONFIGS = [{"x": x, "tag": "a"} for x in range(6)]


def _values(df):
    return df.sort_values(["config_key", "metric"])[["config_key", "metric", "value", "seed"]].reset_index(drop=True)


def test_keys_and_seeds_depend_on_config_only():
    assert config_key({"a": 1, "b": 2.0}) == config_key({"b": 2.0, "a": 1})
    assert config_seed({"a": 1}) == config_seed({"a": 1}) != config_seed({"a": 2})
    assert config_seed({"a": 1}, root_seed=1) != config_seed({"a": 1}, root_seed=0)
    with pytest.raises(ValueError, match="plain"):
        config_key({"a": [1, 2]})


def test_parallel_equals_serial_and_rows_carry_metadata(tmp_path):
    serial = run_sweep("toy", CONFIGS, sweep_tasks.noisy_task, tmp_path / "s", progress=False)
    parallel = run_sweep("toy", list(reversed(CONFIGS)), sweep_tasks.noisy_task, tmp_path / "p", n_jobs=2, progress=False)
    pd.testing.assert_frame_equal(_values(serial), _values(parallel))
    assert len(serial) == 12
    for col in ("experiment", "commit", "torch_version", "cmtheory_version", "wall_s", "device", "torch_threads", "x", "tag"):
        assert col in serial.columns
    assert (tmp_path / "s" / "toy.csv").exists()


def test_resume_after_failure_keeps_completed_configs(tmp_path):
    with pytest.raises(RuntimeError, match="x=3 fails"):
        run_sweep("toy", CONFIGS, sweep_tasks.failing_task, tmp_path, progress=False)
    done = sorted((tmp_path / "toy").glob("*.csv"))
    assert len(done) == 3  # x = 0, 1, 2 ran before the failure
    stamps = {p: p.stat().st_mtime_ns for p in done}
    df = run_sweep("toy", CONFIGS, sweep_tasks.noisy_task, tmp_path, progress=False)
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())  # not recomputed
    assert len(df) == 12 and df["config_key"].nunique() == 6
    ref = run_sweep("toy", CONFIGS, sweep_tasks.noisy_task, tmp_path / "fresh", progress=False)
    pd.testing.assert_frame_equal(_values(df), _values(ref))


def test_kill_minus_nine_loses_nothing_and_duplicates_nothing(tmp_path):
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import sweep_tasks
        from cmtheory.sweep import run_sweep
        configs = [{{"x": x, "tag": "k"}} for x in range(40)]
        run_sweep("toy", configs, sweep_tasks.slow_task, {str(tmp_path)!r}, progress=False)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script])
    parts = tmp_path / "toy"
    deadline = time.time() + 60
    while time.time() < deadline and len(list(parts.glob("*.csv"))) < 5:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    survived = list(parts.glob("*.csv"))
    assert 5 <= len(survived) < 40
    for p in survived:  # every part is a complete table
        assert len(pd.read_csv(p)) == 2
    configs = [{"x": x, "tag": "k"} for x in range(40)]
    df = run_sweep("toy", configs, sweep_tasks.noisy_task, tmp_path, progress=False)
    assert len(df) == 80 and df.groupby("config_key").size().eq(2).all()
    assert not list(parts.glob(".tmp-*"))  # no leftover written as a result


def test_dask_local_cluster_gives_the_same_rows(tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        dask_df = run_sweep("toy", CONFIGS, sweep_tasks.noisy_task, tmp_path / "d", scheduler=client, progress=False)
    serial = run_sweep("toy", CONFIGS, sweep_tasks.noisy_task, tmp_path / "s", progress=False)
    pd.testing.assert_frame_equal(_values(dask_df), _values(serial))


def test_load_results_falls_back_to_the_table(tmp_path):
    run_sweep("toy", CONFIGS, sweep_tasks.noisy_task, tmp_path, progress=False)
    for p in (tmp_path / "toy").glob("*.csv"):
        p.unlink()
    assert len(load_results("toy", tmp_path)) == 12


def test_device_resolution():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cpu", "cuda")
    with pytest.raises(ValueError, match="device must be"):
        resolve_device("tpu")


def _git(repo, *args):
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def test_stale_results_follow_the_code_between_the_recorded_commit_and_head(tmp_path):
    """A table made at commit A is current while cmtheory/ and experiments/ are unchanged since
    A (other files may change), stale once they change, current again when remade at HEAD;
    a commit git does not know gives None (cannot tell), never 'current'."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    (repo / "cmtheory").mkdir(parents=True)
    (repo / "results").mkdir()
    (repo / "cmtheory" / "x.py").write_text("a = 1\n")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "code")
    made_at = _git(repo, "rev-parse", "--short", "HEAD")
    table = repo / "results" / "toy.csv"
    pd.DataFrame({"commit": [made_at, made_at], "value": [1.0, 2.0]}).to_csv(table, index=False)
    (repo / "README.md").write_text("docs\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "results and docs")
    assert stale_results(repo / "results") == {"toy.csv": {made_at: []}}
    (repo / "cmtheory" / "x.py").write_text("a = 2\n")
    _git(repo, "commit", "-qam", "code changes")
    assert stale_results(repo / "results") == {"toy.csv": {made_at: ["cmtheory/x.py"]}}
    pd.DataFrame({"commit": [_git(repo, "rev-parse", "--short", "HEAD")], "value": [1.0]}).to_csv(table, index=False)
    assert list(stale_results(repo / "results")["toy.csv"].values()) == [[]]
    assert changed_since("0123abc", repo=repo) is None and changed_since("unknown", repo=repo) is None
    assert changed_since(made_at, repo=tmp_path) is None  # not a git checkout


def test_verify_results_finds_an_edited_value_and_skips_timings(tmp_path):
    """A rerun of recorded configs is identical bit for bit; a value edited in the table is
    reported as 'differs'; a value moved within its CI is 'within CI'; timings are skipped and
    a config absent from the table is 'missing'."""
    run_sweep("toy", CONFIGS, sweep_tasks.estimate_task, tmp_path, progress=False)
    report = verify_results("toy", CONFIGS[:3], sweep_tasks.estimate_task, tmp_path)
    assert (report["status"] == "identical").all() and set(report["metric"]) == {"mean"} and len(report) == 3 * 3
    table = pd.read_csv(tmp_path / "toy.csv")
    key0, key1 = config_key(CONFIGS[0]), config_key(CONFIGS[1])
    table.loc[(table["config_key"] == key0) & (table["metric"] == "mean"), "value"] += 1.0  # 7 combined se
    table.loc[(table["config_key"] == key1) & (table["metric"] == "mean"), "value"] += 0.1  # 0.7 combined se
    table.to_csv(tmp_path / "toy.csv", index=False)
    report = verify_results("toy", CONFIGS[:2] + [{"x": 99, "tag": "a"}], sweep_tasks.estimate_task, tmp_path)
    status = report.set_index(["config_key", "column"])["status"]
    assert status[(key0, "value")] == "differs" and status[(key1, "value")] == "within CI"
    assert status[(key0, "se")] == "identical" and report["status"].tolist()[-1] == "missing"
    with pytest.raises(ValueError, match="no table"):
        verify_results("nope", CONFIGS, sweep_tasks.estimate_task, tmp_path)
