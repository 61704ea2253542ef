"""Rate figures and paper_checks.md, made from the results tables only."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from cmtheory.rates import FitResult  # noqa: E402

__all__ = ["Check", "plt", "rate_axes", "save_figure", "checks_markdown"]


@dataclass
class Check:
    """One row of paper_checks.md: a claim, the bound's exponent, the measured one, the verdict."""

    claim: str
    paper: str
    statement: str
    variable: str
    bound_exponent: float | None
    fit: FitResult | None
    verdict: str
    figure: str
    config: str
    departures: str = ""
    notes: list = field(default_factory=list)
    summary: str = ""

    def measured(self) -> str:
        """The fitted exponent with its CI; for a comparison (no fit) the ``summary``."""
        if self.fit is None:
            return self.summary or "not measured"
        lo, hi = self.fit.ci[self.variable]
        used = sum(p["used"] for p in self.fit.points)
        return f"{self.fit.exponents[self.variable]:+.3f} [{lo:+.3f}, {hi:+.3f}] ({used}/{len(self.fit.points)} points)"


def rate_axes(ax, x, y, se=None, fit: FitResult | None = None, variable: str = "T", bound_exponent: float | None = None, label: str = "", color=None, excluded=None):
    """Log-log error bars, the fitted power law, and the bound's slope anchored at the first point."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    se = None if se is None else np.asarray(se, float)
    mask = np.ones_like(x, bool) if excluded is None else ~np.asarray(excluded, bool)
    line = ax.errorbar(x[mask], y[mask], yerr=None if se is None else 1.96 * se[mask], fmt="o", ms=4, capsize=2, color=color, label=label)
    c = line[0].get_color()
    if excluded is not None and (~mask).any():
        ax.plot(x[~mask], y[~mask], "x", color=c, ms=6, label=f"{label} (at noise floor, excluded)")
    xs = np.geomspace(x.min(), x.max(), 50)
    if fit is not None:
        lo, hi = fit.ci[variable]
        ax.plot(xs, np.exp(fit.log_prefactor) * xs ** fit.exponents[variable], "-", color=c, lw=1, label=f"fit slope {fit.exponents[variable]:+.2f} [{lo:+.2f}, {hi:+.2f}]")
    if bound_exponent is not None:
        x0, y0 = x[mask][0], y[mask][0]
        ax.plot(xs, y0 * (xs / x0) ** bound_exponent, ":", color=c, lw=1, label=f"bound slope {bound_exponent:+.2f}")
    ax.set_xscale("log")
    ax.set_yscale("log")


def save_figure(fig, figures_dir: str | Path, name: str) -> str:
    """Write PNG and PDF; returns the PNG path relative to the repository root."""
    figures_dir = Path(figures_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    for ext in ("png", "pdf"):
        fig.savefig(figures_dir / f"{name}.{ext}", dpi=130, bbox_inches="tight")
    plt.close(fig)
    return f"{figures_dir.name}/{name}.png"


def _fmt(v):
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:+.3f}"


def checks_markdown(checks: list[Check], header: str) -> str:
    """The paper_checks.md text: a summary table, then each claim with its details."""
    out = [header, "", "| claim | paper | variable | bound exponent | measured exponent (95% CI) | verdict |", "|---|---|---|---|---|---|"]
    for c in checks:
        out.append(f"| {c.claim} | {c.paper} | {c.variable} | {_fmt(c.bound_exponent)} | {c.measured()} | {c.verdict} |")
    for c in checks:
        out += ["", f"## {c.claim}", "", f"- Paper: {c.paper}", f"- Statement: {c.statement}", f"- Bound exponent of {c.variable}: {_fmt(c.bound_exponent)}", f"- Measured: {c.measured()}" + (f", {c.fit.method}" if c.fit else ""), f"- Verdict: **{c.verdict}**", f"- Figure: [{c.figure}]({c.figure})", f"- Config: {c.config}"]
        if c.departures:
            out.append(f"- Departures from the paper: {c.departures}")
        if c.fit is not None and c.fit.excluded:
            out.append("- Excluded points: " + "; ".join(f"{c.variable}={p[c.variable]:g} ({p['reason']})" for p in c.fit.excluded))
        out += [n if (not n or n.startswith("|")) else f"- {n}" for n in c.notes]
    return "\n".join(out) + "\n"
