"""One module per claim. Each defines NAME, CLAIM, PROFILES, configs(profile),
verify_configs(profile) (a cheap subset of configs(profile) that ``cmtheory checks --verify``
reruns), run(config, seed, device) -> rows, and checks(df, figures_dir, profile) -> [Check]."""

from importlib import import_module

MODULES = ["accelerated", "high_dim", "score_error", "consistency_training", "direct_cm", "statistical_rate", "scm", "manifold", "worst_case"]


def registry() -> dict:
    """name -> module, in the order of MODULES."""
    mods = [import_module(f"experiments.{m}") for m in MODULES]
    return {m.NAME: m for m in mods}
