"""Rate figures and paper_checks.md, made from the results tables only."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import FixedLocator, NullLocator  # noqa: E402

from cmtheory._io import write_atomic  # noqa: E402
from cmtheory.rates import REGIMES, VERDICTS, FitResult, Regime, asymptotic_regime  # noqa: E402

__all__ = ["Check", "plt", "rate_axes", "local_slopes_inset", "design_ticks", "regime_of", "save_figure", "text_overlaps", "checks_markdown", "glossary_markdown", "REGIME_VARIABLES"]

#: Variables over whose range a rate is asymptotic or not (the step count, the sample size);
#: every fit in one of them gets the drift diagnostic. Dimension exponents do not.
REGIME_VARIABLES = ("T", "n")


def regime_of(fit: FitResult | None, variable: str) -> Regime | None:
    """The asymptotic-regime diagnostic of a fit in T or n (:func:`cmtheory.rates.asymptotic_regime`);
    None when there is no fit, the variable is not a range variable, or fewer than 4 distinct
    values of it are used (``Check`` then says "untested" with the count)."""
    if fit is None or variable not in REGIME_VARIABLES or variable not in fit.exponents:
        return None
    if len({p[variable] for p in fit.points if p["used"]}) < 4:
        return None
    return asymptotic_regime(fit, variable)


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
    regime: Regime | None = field(init=False, default=None)

    def __post_init__(self):
        self.regime = regime_of(self.fit, self.variable)

    def regime_verdict(self) -> str:
        """The regime diagnostic's word; "untested" with the count of usable values, or "n/a"."""
        if self.regime is not None:
            return self.regime.verdict
        if self.fit is None or self.variable not in REGIME_VARIABLES:
            return "n/a"
        n = len({p[self.variable] for p in self.fit.points if p["used"]})
        return f"untested ({n} values of {self.variable} used; needs 4)"

    def regime_lines(self) -> list:
        """The diagnostic's details for the claim's section."""
        if self.regime is None:
            return [] if self.regime_verdict() == "n/a" else [f"- Asymptotic regime: **{self.regime_verdict()}**"]
        r = self.regime
        lines = [f"- Asymptotic regime: **{r.verdict}**; {r.summary()}"]
        if r.verdict == "not yet asymptotic" and self.bound_exponent is not None:
            x, lo, hi = r.reach(self.bound_exponent)
            where = "never, at this drift" if math.isinf(x) else f"{self.variable} ~ {x:.2g} (CI {lo:.2g} to {hi:.2g})"
            lines.append(f"- If the local slope kept drifting as it does here ({r.slope_at_max:+.3f} at {self.variable} = {r.x_max:g}), it would reach the bound's exponent {self.bound_exponent:+.2f} at {where}: an extrapolation, the cost of seeing the rate, not a measurement.")
        return lines

    def measured(self) -> str:
        """The fitted exponent with its CI; for a comparison (no fit) the ``summary``."""
        if self.fit is None:
            return self.summary or "not measured"
        lo, hi = self.fit.ci[self.variable]
        used = sum(p["used"] for p in self.fit.points)
        return f"{self.fit.exponents[self.variable]:+.3f} [{lo:+.3f}, {hi:+.3f}] ({used}/{len(self.fit.points)} points)"


def rate_axes(ax, x, y, se=None, fit: FitResult | None = None, variable: str = "T", bound_exponent: float | None = None, label: str = "", color=None, excluded=None, why_excluded: str = "at noise floor"):
    """Log-log error bars, the fitted power law, and the bound's slope anchored at the first point;
    points flagged ``excluded`` drawn as crosses labelled with ``why_excluded``; for a fit in T or
    n with a regime diagnostic, its local slopes in an inset (:func:`local_slopes_inset`)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    se = None if se is None else np.asarray(se, float)
    mask = np.ones_like(x, bool) if excluded is None else ~np.asarray(excluded, bool)
    line = ax.errorbar(x[mask], y[mask], yerr=None if se is None else 1.96 * se[mask], fmt="o", ms=4, capsize=2, color=color, label=label)
    c = line[0].get_color()
    if excluded is not None and (~mask).any():
        ax.plot(x[~mask], y[~mask], "x", color=c, ms=6, label=f"{label} ({why_excluded}, excluded)")
    xs = np.geomspace(x.min(), x.max(), 50)
    if fit is not None:
        lo, hi = fit.ci[variable]
        ax.plot(xs, np.exp(fit.log_prefactor) * xs ** fit.exponents[variable], "-", color=c, lw=1, label=f"fit slope {fit.exponents[variable]:+.2f} [{lo:+.2f}, {hi:+.2f}]")
    if bound_exponent is not None:
        x0, y0 = x[mask][0], y[mask][0]
        ax.plot(xs, y0 * (xs / x0) ** bound_exponent, ":", color=c, lw=1, label=f"bound slope {bound_exponent:+.2f}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    design_ticks(ax, x)
    regime = regime_of(fit, variable)
    if regime is not None:
        local_slopes_inset(ax, regime, bound_exponent, c)


def design_ticks(ax, x) -> None:
    """x ticks at the design points (with those of earlier calls on ``ax``), labelled plainly:
    log-scale minor labels collide on ranges of a decade or two."""
    old = ax.xaxis.get_major_locator()
    ticks = sorted(set(np.asarray(x, float).tolist()) | (set(old.locs) if isinstance(old, FixedLocator) else set()))
    ax.set_xticks(ticks, [f"{v:g}" for v in ticks])
    ax.xaxis.set_minor_locator(NullLocator())


def local_slopes_inset(ax, regime: Regime, bound_exponent: float | None = None, color=None):
    """Local slopes against the variable (one segment per pair of successive values) in a strip
    below ``ax`` that shares its x axis, shared by every curve drawn on ``ax``; the bound's
    exponent dotted."""
    strip = next((a for a in ax.child_axes if a.get_label() == "local slopes"), None)
    if strip is None:
        strip = ax.inset_axes([0.0, -0.52, 1.0, 0.27], label="local slopes", sharex=ax)
        strip.set_ylabel("local slope", fontsize=7)
        strip.set_xlabel(regime.variable, fontsize=7, labelpad=1)
        strip.tick_params(labelsize=7)
    for a, b, s in regime.local_slopes:
        strip.plot([a, b], [s, s], "-", color=color, lw=1.5)
    if bound_exponent is not None:
        strip.axhline(bound_exponent, color=color, ls=":", lw=0.8)


def text_overlaps(fig, min_px: float = 1.0) -> list[tuple[str, str]]:
    """Pairs of text labels that overlap on the rendered figure.

    The figure is drawn once (so that constrained layout and the tick locators have run) with
    :meth:`matplotlib.text.Text.draw` recording the window extent of every non-empty text it
    actually draws: tick labels, axis labels, titles, legend entries, annotations. Two labels
    overlap when their boxes intersect by more than ``min_px`` pixels in both directions.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure, as it will be saved.
    min_px : float
        Intersection, in pixels at the figure's dpi, below which touching boxes do not count.

    Returns
    -------
    list of (str, str)
        The overlapping pairs' texts; empty when no two labels collide.
    """
    from matplotlib.text import Text

    drawn = []
    draw = Text.draw

    def recording_draw(self, renderer):
        draw(self, renderer)
        if self.get_visible() and self.get_text().strip():
            drawn.append((self.get_text(), self.get_window_extent(renderer)))

    Text.draw = recording_draw
    try:
        fig.canvas.draw()
    finally:
        Text.draw = draw
    pairs = []
    for i, (a, ba) in enumerate(drawn):
        for b, bb in drawn[i + 1:]:
            dx = min(ba.x1, bb.x1) - max(ba.x0, bb.x0)
            dy = min(ba.y1, bb.y1) - max(ba.y0, bb.y0)
            if dx > min_px and dy > min_px:
                pairs.append((a, b))
    return pairs


def save_figure(fig, figures_dir: str | Path, name: str) -> str:
    """Write PNG and PDF, each atomically and only when its bytes change (the PDF carries no
    creation date, so an unchanged figure is byte-identical); returns the PNG path relative
    to the repository root."""
    figures_dir = Path(figures_dir)
    for ext in ("png", "pdf"):
        buf = io.BytesIO()
        fig.savefig(buf, format=ext, dpi=130, bbox_inches="tight", metadata={"CreationDate": None} if ext == "pdf" else None)
        write_atomic(figures_dir / f"{name}.{ext}", buf.getvalue())
    plt.close(fig)
    return f"{figures_dir.name}/{name}.png"


def _fmt(v):
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:+.3f}"


def glossary_markdown() -> str:
    """The verdict words and their meanings, from :data:`cmtheory.rates.VERDICTS` and :data:`~cmtheory.rates.REGIMES`."""
    out = ["## How to read the verdicts", "", "Rate verdicts (`cmtheory.rates.verdict`; e is the bound's exponent, [e, e + s] the band its log factors add):", ""]
    out += [f"- **{w}**: {m}." for w, m in VERDICTS.items()]
    out += ["", "Asymptotic regime (`cmtheory.rates.asymptotic_regime`, every fit over a range of T or n with at least 4 values):", ""]
    out += [f"- **{w}**: {m}." for w, m in REGIMES.items()]
    return "\n".join(out) + "\n"


def checks_markdown(checks: list[Check], header: str) -> str:
    """The paper_checks.md text: a summary table, then each claim with its details."""
    out = [header, "", "| claim | paper | variable | bound exponent | measured exponent (95% CI) | verdict | asymptotic regime |", "|---|---|---|---|---|---|---|"]
    for c in checks:
        out.append(f"| {c.claim} | {c.paper} | {c.variable} | {_fmt(c.bound_exponent)} | {c.measured()} | {c.verdict} | {c.regime_verdict()} |")
    for c in checks:
        out += ["", f"## {c.claim}", "", f"- Paper: {c.paper}", f"- Statement: {c.statement}", f"- Bound exponent of {c.variable}: {_fmt(c.bound_exponent)}", f"- Measured: {c.measured()}" + (f", {c.fit.method}" if c.fit else ""), f"- Verdict: **{c.verdict}**", *c.regime_lines(), f"- Figure: [{c.figure}]({c.figure})", f"- Config: {c.config}"]
        if c.departures:
            out.append(f"- Departures from the paper: {c.departures}")
        if c.fit is not None and c.fit.excluded:
            out.append("- Excluded points: " + "; ".join(f"{c.variable}={p[c.variable]:g} ({p['reason']})" for p in c.fit.excluded))
        out += [n if (not n or n.startswith("|")) else f"- {n}" for n in c.notes]
    return "\n".join(out) + "\n\n" + glossary_markdown()
