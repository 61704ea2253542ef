"""The committed results/*.csv and paper_checks.md are the output of the committed code: the
commit recorded in each table (and in paper_checks.md's header) has the same cmtheory/ and
experiments/ as HEAD."""

import re
from pathlib import Path

import pytest

from cmtheory.sweep import SOURCE_FOLDERS, changed_since, stale_results

ROOT = Path(__file__).resolve().parents[1]


def _verdict(source: str, commit: str, changed) -> str | None:
    if changed is None:
        pytest.skip(f"no git history to compare {source} (made at {commit}) with HEAD: a checkout without .git or a shallow clone")
    if changed:
        return f"{source} was made at {commit}; since then {len(changed)} file(s) changed: {', '.join(changed[:5])}"
    return None


def test_results_tables_are_current():
    problems = []
    for table, commits in stale_results(ROOT / "results").items():
        problems += filter(None, (_verdict(f"results/{table}", c, ch) for c, ch in commits.items()))
    assert not problems, f"results are stale: rerun bash scripts/main.sh (after rm -rf results/*/, the cache of parts made by older code). Tables made before a change in {'/, '.join(SOURCE_FOLDERS)}/:\n" + "\n".join(problems)


def test_paper_checks_is_current():
    header = (ROOT / "paper_checks.md").read_text().split("\n", 3)[2]
    commit = re.search(r"\(commit ([0-9a-f]{7,40})", header)
    assert commit, f"paper_checks.md's header records no commit: {header!r}"
    problem = _verdict("paper_checks.md", commit.group(1), changed_since(commit.group(1), repo=ROOT))
    assert problem is None, f"results are stale: rerun bash scripts/main.sh. {problem}"
