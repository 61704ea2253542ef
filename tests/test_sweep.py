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
from cmtheory.sweep import changed_since, config_key, config_seed, load_results, part_problem, resolve_device, run_sweep, stale_results, verify_results

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


def test_damaged_parts_are_reported_and_recomputed(tmp_path):
    """An empty, truncated, edited or checksum-less part is named in a warning and recomputed
    to the same rows; never read as data."""
    ref = _values(run_sweep("toy", CONFIGS, sweep_tasks.noisy_task, tmp_path, progress=False))
    parts = sorted((tmp_path / "toy").glob("*.csv"))
    parts[0].write_text("")  # emptied
    parts[1].write_bytes(parts[1].read_bytes()[:-9])  # truncated
    parts[2].write_text(parts[2].read_text().replace("draw", "drew"))  # edited
    parts[3].with_suffix(".sha1").unlink()  # no checksum
    assert part_problem(parts[4]) is None and part_problem(tmp_path / "nope.csv") == "missing"
    with pytest.warns(RuntimeWarning) as caught:
        again = run_sweep("toy", CONFIGS, sweep_tasks.noisy_task, tmp_path, progress=False)
    named = " ".join(str(w.message) for w in caught)
    assert all(p.name in named for p in parts[:4]) and parts[4].name not in named
    assert "checksum mismatch" in named and "no valid checksum" in named
    pd.testing.assert_frame_equal(_values(again), ref)
    assert all(part_problem(p) is None for p in parts)


def test_a_task_without_rows_fails_when_it_runs(tmp_path):
    with pytest.raises(ValueError, match="returned no rows"):
        run_sweep("toy", CONFIGS[:1], sweep_tasks.empty_task, tmp_path, progress=False)
    assert not list((tmp_path / "toy").glob("*.csv"))


@pytest.mark.parametrize("name", ["../escape", "a/b", ".hidden", "", "x y"])
def test_experiment_names_stay_inside_the_results_directory(tmp_path, name):
    with pytest.raises(ValueError, match="plain file name"):
        run_sweep(name, CONFIGS, sweep_tasks.noisy_task, tmp_path / "r", progress=False)
    assert not (tmp_path / "escape").exists()


@pytest.mark.parametrize("config", [{"x": float("nan")}, {"x": float("inf")}, {}, {1: 2}])
def test_configs_with_nan_or_no_values_are_refused(config):
    with pytest.raises(ValueError, match="finite|non-empty|keys must be strings"):
        config_key(config)


def test_a_fully_cached_run_writes_nothing_and_works_read_only(tmp_path):
    """Rerunning a finished sweep rewrites no file (same bytes, same mtime), so it also runs
    with the results directory read-only."""
    run_sweep("toy", CONFIGS, sweep_tasks.noisy_task, tmp_path, progress=False)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    stamps = {p: p.stat().st_mtime_ns for p in files}
    for p in [tmp_path, tmp_path / "toy", *files]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        if os.access(tmp_path / "toy.csv", os.W_OK):
            pytest.skip("running as a user that ignores permissions (root): checked by mtimes only")
        df = run_sweep("toy", CONFIGS, sweep_tasks.noisy_task, tmp_path, progress=False)
    finally:
        for p in [tmp_path, tmp_path / "toy", *files]:
            p.chmod(0o755 if p.is_dir() else 0o644)
    assert len(df) == 12 and all(p.stat().st_mtime_ns == t for p, t in stamps.items())


def test_a_fully_cached_run_rewrites_no_file(tmp_path):
    run_sweep("toy", CONFIGS, sweep_tasks.noisy_task, tmp_path, progress=False)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    stamps = {p: p.stat().st_mtime_ns for p in files}
    time.sleep(0.01)
    run_sweep("toy", CONFIGS, sweep_tasks.noisy_task, tmp_path, progress=False)
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())


def _children(pid):
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _sweep_script(tmp_path, n_jobs):
    return textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import sweep_tasks
        from cmtheory.sweep import run_sweep
        configs = [{{"x": x, "tag": "k"}} for x in range(40)]
        run_sweep("toy", configs, sweep_tasks.slow_task, {str(tmp_path)!r}, n_jobs={n_jobs}, progress=False)
        """
    )


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find the worker processes")
def test_workers_of_a_killed_parallel_sweep_exit_promptly(tmp_path):
    """kill -9 of a --jobs 2 sweep: its worker processes are gone within 5 s (they used to idle
    for minutes), and the one-writer lock is free again."""
    proc = subprocess.Popen([sys.executable, "-c", _sweep_script(tmp_path, 2)])
    deadline = time.time() + 120
    while time.time() < deadline and len(list((tmp_path / "toy").glob("*.sha1"))) < 3:
        time.sleep(0.05)
    workers = [p for p in _children(proc.pid) if "python" in Path(f"/proc/{p}/cmdline").read_text(errors="ignore")]
    assert workers, "no worker process found"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 5
    while time.time() < deadline and any(Path(f"/proc/{p}").exists() and "Z" not in Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0] for p in workers):
        time.sleep(0.1)
    alive = [p for p in workers if Path(f"/proc/{p}").exists() and "Z" not in Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0]]
    assert not alive, f"workers still running 5 s after the sweep was killed: {alive}"
    df = run_sweep("toy", [{"x": x, "tag": "k"} for x in range(40)], sweep_tasks.noisy_task, tmp_path, progress=False)
    assert len(df) == 80


def test_a_second_writer_stops_with_a_message(tmp_path):
    """While one run holds an experiment's cache, a second run on the same results directory
    refuses at once instead of repeating its work."""
    proc = subprocess.Popen([sys.executable, "-c", _sweep_script(tmp_path, 1)])
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not list((tmp_path / "toy").glob("*.sha1")):
            time.sleep(0.05)
        with pytest.raises(RuntimeError, match="another run is writing .* one writer per experiment"):
            run_sweep("toy", [{"x": x, "tag": "k"} for x in range(40)], sweep_tasks.noisy_task, tmp_path, progress=False)
    finally:
        proc.kill()
        proc.wait()


def test_configs_run_longest_first_by_the_recorded_wall_times(tmp_path):
    """With a table recording wall times, the configs are handed out longest first, those it does
    not record before all; without one, in the order given."""
    from cmtheory.sweep import _longest_first

    table = tmp_path / "toy.csv"
    pd.DataFrame([{"config_key": config_key(c), "wall_s": w} for c, w in zip(CONFIGS[:4], [1.0, 5.0, 3.0, 0.5])]).to_csv(table, index=False)
    order = [c["x"] for c in _longest_first(CONFIGS, table)]
    assert order[:2] == [4, 5] and order[2:] == [1, 2, 0, 3]
    assert _longest_first(CONFIGS, tmp_path / "missing.csv") == CONFIGS
