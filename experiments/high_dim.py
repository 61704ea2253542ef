r"""Claim E in high dimension, on targets that are not products: how does the TV of DDPM, of the
exact-covariance second-order sampler and of the ICML 2024 accelerated stochastic sampler grow
with d?

On a product target the error grows like sqrt(d) by construction (``accelerated``'s product rows
are that baseline). Here the target is an isotropic Gaussian scale mixture
:math:`\tfrac12 N(0, \tfrac12 I_d) + \tfrac12 N(0, I_d)`, rotation-invariant but not a product,
and the output law of each sampler is computed exactly for d up to 4096 through the law of its
radius (:mod:`cmtheory.laws.radial`; TV between rotation-invariant laws equals TV between their
radial laws), Richardson-extrapolated on a radius grid whose cell is at most the smallest
per-step noise :math:`\sqrt{\beta_1}` (finer cells than the noise are needed for second-order
convergence; the law's own error is reported with every row). The exact-covariance step's
noise depends on the radius, radially and tangentially (:func:`cmtheory.samplers.sampler_law_radial` reads it off the step's noise operator).

Rows: TV(output, X_0) for d in the profile's dimensions and T in its step counts, from
:math:`Y_T \sim N(0, I_d)`, linear VP schedule. Checks: a joint fit TV ~ C T^a d^b per sampler
against its bound (Li & Yan's d/T for DDPM, Li & Cai's d^(5/2)/T^2, i.e. T ~ d^(5/4)/sqrt(eps),
for the exact-covariance sampler, the believed d^3/T for the ICML 2024 sampler), steps-to-eps
exponents of d and 1/eps, and a search over a small family (two-scale mixtures of two scale ratios
and two weights, a three-scale mixture, the spheres of radius sqrt(d)/2 and sqrt(d)) for the
member whose d exponent is largest (DDPM, T = 100). A point enters the fits when
its TV is below SATURATION, its mass stayed on the grid and its law error is at most a third of
its value; the others are listed.

Deterministic samplers (DDIM, DPM-Solver++(2M), the ICML 2024 ODE sampler, HEROISM K = 2 and 3), the
``ode`` rows: on a rotation-invariant target a deterministic sampler's map is rotation-equivariant, so
its output law is the start's radial law pushed through :math:`r \mapsto |\Phi(r e_1)|`
(:func:`cmtheory.samplers.sampler_law_radial`), exact up to its Newton residual, from the exact q_T
(the discretisation error alone) and from N(0, I_d) (which a bijection carries unchanged). Checks: the
d exponent of a joint fit TV ~ C T^a d^b against each bound's (DDIM against the first-order
probability-flow bound of Li, Wei, Chen & Chi 2023, as in docs/papers.md; the ICML 2024 ODE bound is
believed, its text not retrieved; HEROISM's Theorem 1 retrieved; DPM-Solver++(2M) has none: its row checks
its design order in T and reports its d exponent), and the steps-to-eps exponents, from either start.

Second target: the uniform law on the sphere of radius sqrt(d) (``Sphere(d, d, sqrt(d))``), a
singular target; DDPM and the exact-covariance sampler run to step 1 (``t_stop = 1``) and are
compared with the sphere's noisy law at step 1, :math:`X_1` (the bounds are stated there), in
the closed form of its radial profile (:meth:`cmtheory.targets.Sphere.radial_profile`). The
law at :math:`X_1` has a radial spread of about :math:`\sqrt{\beta_1}`, so the radius grid has
cells of :math:`\sqrt{\beta_1}/2` (SPHERE_CELLS_PER_NOISE). The check is the d exponent of a
joint fit TV ~ C T^a d^b (in d alone where the points below SATURATION hold one T); the TV
against T is reported, not checked: with the linear schedule the first
steps' relative size :math:`\beta_t/\sigma_t^2 \approx 1/t` does not shrink with T, and on a
singular target those steps set the error (the bounds assume the schedule of Li, Wei, Chen &
Chi, whose relative steps are :math:`c_1\log T/T`; on it the sphere's laws need cells of
:math:`T^{-1}`, beyond the quick profile).

Claim A on the scale mixture: ideal consistency training (zero learning error, Li, Huang & Wei),
whose consistency function is radial, :math:`f_t(x) = \phi_t(|x|)\,x/|x|`
(:func:`cmtheory.consistency.ideal_ct_radial`); its one-step output against :math:`X_1` in W2
(:func:`cmtheory.consistency.ideal_ct_error`), against T and d, fitted jointly against the
bound :math:`d^{5/2}\log^5 T/T`, and the steps-to-eps exponents of d and 1/eps against
:math:`d^{5/2}/\epsilon` (EPS_CT).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import scipy.stats
import torch

from cmtheory.consistency import ideal_ct_error
from cmtheory.laws import radial_law, richardson_law, start_radial_law, uniform_grid
from cmtheory.metrics import tv_grid
from cmtheory.processes import linear_schedule
from cmtheory.rates import fit_power_law, log_slack, steps_log_slack, steps_to_eps, verdict
from cmtheory.report import Check, design_ticks, plt, rate_axes, save_figure
from cmtheory.samplers import SAMPLERS, sampler_law_radial
from cmtheory.targets import GaussianMixture, Sphere
from cmtheory.theory import BOUNDS

NAME = "high_dim"
CLAIM = "E and A on rotation-invariant (non-product) targets: TV of the stochastic and deterministic samplers (exact radial laws), and W2 of ideal consistency training, against d up to 4096"
PROFILES = {
    "quick": {"d": [1, 8, 64, 512, 4096], "T": [25, 50, 100, 200], "sphere_d": [1, 64, 512, 4096], "sphere_T": [50, 100, 200], "ct_T": [25, 50, 100, 200], "ct_cells": 3000, "family_d": [64, 512, 4096], "cells_per_noise": 1},
    "full": {"d": [1, 4, 16, 64, 256, 1024, 4096], "T": [25, 50, 100, 200, 400, 800], "sphere_d": [1, 4, 16, 64, 256, 1024, 4096], "sphere_T": [50, 100, 200, 400], "ct_T": [25, 50, 100, 200, 400], "ct_cells": 8000, "family_d": [64, 256, 1024, 4096], "cells_per_noise": 2},
}
#: the main target: weights and isotropic variances of the scale mixture
MAIN = {"w_small": 0.5, "v_small": 0.5}
#: the family searched for the largest d exponent: scale mixtures sum_k w_k N(0, v_k I_d) (two scales,
#: their ratio and weight; three scales) and spheres of radius rho sqrt(d); the main target and the
#: sphere of radius sqrt(d) are members, their rows those of the main and sphere configs
FAMILY = {
    **{f"w={w:g}, v={v:g}": {"weights": (w, 1 - w), "variances": (v, 1.0)} for v in (0.25, 0.5) for w in (0.2, 0.5)},
    "three scales 0.25, 0.5, 1": {"weights": (1 / 3, 1 / 3, 1 / 3), "variances": (0.25, 0.5, 1.0)},
    "sphere, radius sqrt(d) / 2": {"radius": 0.5},
    "sphere, radius sqrt(d)": {"radius": 1.0},
}
MAIN_MEMBER, SPHERE_MEMBER = f"w={MAIN['w_small']:g}, v={MAIN['v_small']:g}", "sphere, radius sqrt(d)"
FAMILY_T = 100
#: the stochastic samplers and their bounds (the main rows)
SAMPLER_BOUNDS = {"ddpm": "li_yan_ddpm", "exact_covariance": "li_cai_accelerated", "li_icml2024": "li_icml2024_sde"}
#: the deterministic samplers (the ode rows, exact radial pushforwards) and their bounds; None: no
#: bound with a d exponent in cmtheory.theory (the d exponent is reported, not checked)
ODE_BOUNDS = {"ddim": "li_wei_chen_chi_ode", "dpm_solver_pp_2m": None, "li_icml2024_ode": "li_icml2024_ode", "heroism_k2": "heroism_k2", "heroism": "heroism"}
#: accuracies of the ideal-CT steps-to-eps fit (W2 spans 0.008 at d = 1 to 5.8 at d = 4096)
EPS_CT = [0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56]
EPS = [0.005, 0.01, 0.02, 0.04, 0.08]
#: quantile of the radius left outside the grid at each end
TAIL = 1e-13
#: fewest radius cells (low d: cheap, and keeps the law error far below the small TVs there)
MIN_CELLS = 1024
#: TV at or above this is outside the power-law regime
SATURATION = 0.25
#: mass off the grid above which a law is not resolved (its row is kept, listed and left out of the fits)
LOST_TOL = 1e-6
#: largest law error (Richardson's estimate) relative to the TV for a point to enter the fits
RESOLUTION = 1 / 3
LINESTYLES = {"ddpm": "-", "exact_covariance": ":", "li_icml2024": "--"}
#: the samplers run on the sphere (at T = 25 the exact-covariance step's mean map folds over on it in d = 8)
SPHERE_SAMPLERS = ("ddpm", "exact_covariance")
#: radius cells per sqrt(beta_1) on the sphere (times the profile's cells_per_noise): the law at X_1
#: spreads over ~sqrt(beta_1) in radius (d = 64, T = 200, DDPM: 2, 4 and 8 give TV 0.2240, 0.2242
#: and 0.2249, law errors 2.8e-3, 6.6e-4 and 1.6e-4)
SPHERE_CELLS_PER_NOISE = 2


def configs(profile: str) -> list[dict]:
    p = PROFILES[profile]
    main = [{"kind": "main", "sampler": s, "d": d, "T": T, **MAIN, "cells_per_noise": p["cells_per_noise"]} for s in SAMPLER_BOUNDS for d in p["d"] for T in p["T"]]
    ode = [{"kind": "ode", "sampler": s, "start": start, "d": d, "T": T, **MAIN, "cells_per_noise": p["cells_per_noise"]} for s in ODE_BOUNDS for start in ("q_T", "normal") for d in p["d"] for T in p["T"]]
    family = [{"kind": "family", "sampler": "ddpm", "d": d, "T": FAMILY_T, "member": m, "cells_per_noise": p["cells_per_noise"]} for m in FAMILY if m not in (MAIN_MEMBER, SPHERE_MEMBER) for d in p["family_d"]]
    sphere = [{"kind": "sphere", "sampler": s, "d": d, "T": T, "cells_per_noise": p["cells_per_noise"]} for s in SPHERE_SAMPLERS for d in p["sphere_d"] for T in p["sphere_T"]]
    ideal = [{"kind": "ideal_ct", "d": d, "T": T, **MAIN, "cells": p["ct_cells"]} for d in p["d"] for T in p["ct_T"]]
    return main + ode + family + sphere + ideal


def verify_configs(profile: str) -> list[dict]:
    """A cheap subset for ``cmtheory checks --verify``: the second smallest d, the smallest T."""
    p = PROFILES[profile]
    return [c for c in configs(profile) if c["kind"] == "main" and c["d"] == p["d"][1] and c["T"] == p["T"][0]]


def scale_mixture(d: int, w_small: float, v_small: float) -> GaussianMixture:
    """w N(0, v I_d) + (1 - w) N(0, I_d)."""
    return GaussianMixture([w_small, 1 - w_small], torch.zeros(2, d), [v_small, 1.0])


def family_target(d: int, member: str):
    """The family member ``member`` in R^d (:data:`FAMILY`)."""
    spec = FAMILY[member]
    if "radius" in spec:
        return Sphere(d, d, radius=spec["radius"] * math.sqrt(d))
    return GaussianMixture(list(spec["weights"]), torch.zeros(len(spec["weights"]), d), list(spec["variances"]))


def radius_grid(d: int, v_small: float, T: int, cells_per_noise: int) -> tuple[float, float, int]:
    r"""(lo, hi, cells): every noisy law of the chain and N(0, I_d) has variances in [v_small, 1], so
    the radius lies in [sqrt(v_small) chi_d^{-1}(TAIL), chi_d^{-1}(1 - TAIL)] (widened by 0.5);
    cell width :math:`\sqrt{\beta_1}/` ``cells_per_noise``, :math:`\beta_1 = 0.1/T`, and at least MIN_CELLS cells."""
    lo = max(0.0, math.sqrt(v_small) * float(scipy.stats.chi.ppf(TAIL, d)) - 0.5)
    hi = float(scipy.stats.chi.ppf(1 - TAIL, d)) + 0.5
    return lo, hi, max(MIN_CELLS, int(math.ceil((hi - lo) * cells_per_noise / math.sqrt(0.1 / T))))


def sphere_grid(d: int, T: int, cells_per_noise: int, rho: float = 1.0) -> tuple[float, float, int]:
    r"""(lo, hi, cells) for the sphere of radius :math:`\rho\sqrt d`: the chi_d TAIL quantiles, scaled by
    :math:`\min(\rho, 1)` and :math:`\max(\rho, 1)`, widened by 1 (the noisy sphere's radius is
    :math:`\sqrt{(\alpha^2\rho^2 + \sigma^2) d} + O(1)` at every t; for rho = 1 a radial Monte Carlo of
    both samplers ends within sqrt(d) +- 0.3 for d = 64..4096, T = 25..200), cells of
    :math:`\sqrt{\beta_1}` / (SPHERE_CELLS_PER_NOISE ``cells_per_noise``)."""
    lo = max(0.0, min(rho, 1.0) * float(scipy.stats.chi.ppf(TAIL, d)) - 1.0)
    hi = max(rho, 1.0) * float(scipy.stats.chi.ppf(1 - TAIL, d)) + 1.0
    return lo, hi, int(math.ceil((hi - lo) * SPHERE_CELLS_PER_NOISE * cells_per_noise / math.sqrt(0.1 / T)))


def _sphere_rows(config: dict, rho: float = 1.0) -> list[dict]:
    """TV(Y_1, X_1) on the sphere of radius rho sqrt(d): the sampler stopped at step 1 against the sphere's noisy law there."""
    d, T = config["d"], config["T"]
    target, sched = Sphere(d, d, radius=rho * math.sqrt(d)), linear_schedule(T)
    lo, hi, cells = sphere_grid(d, T, config["cells_per_noise"], rho)
    law = richardson_law(lambda e: sampler_law_radial(config["sampler"], target, sched, e, start="normal", t_stop=1), lo, hi, cells)
    est = tv_grid(law, radial_law(target, *sched.channel(1), law.edges))
    return [{"metric": "tv", **est.as_row(), "cells": cells, "grid_error": law.grid_error, "lost": law.lost}]


def _ideal_ct_rows(config: dict) -> list[dict]:
    """W2(f_T(X_T), X_1) of ideal consistency training on the scale mixture (its radial recursion)."""
    target = scale_mixture(config["d"], config["w_small"], config["v_small"])
    est = ideal_ct_error(target, linear_schedule(config["T"]), grid_cells=config["cells"])
    return [{"metric": "w2", **est.as_row(), "grid_error": est.se, "lost": est.extra["lost"]}]


def _ode_rows(config: dict) -> list[dict]:
    """TV(Y_0, X_0) of a deterministic sampler on the scale mixture: the exact radial pushforward of
    the start (``config["start"]``: the exact q_T, or N(0, I_d) with ``start_floor`` = TV of the two
    starts, which a bijection carries unchanged), on the main rows' radius grid; ``grid_error`` is
    the pushforward's Newton residual."""
    d, T = config["d"], config["T"]
    target, sched = scale_mixture(d, config["w_small"], config["v_small"]), linear_schedule(T)
    edges = uniform_grid(*radius_grid(d, config["v_small"], T, config["cells_per_noise"]))
    law = sampler_law_radial(config["sampler"], target, sched, edges, start=config["start"])
    if law.lost > LOST_TOL:  # a map that leaves the noisy laws' range (towards the origin): a grid from 0, same cell width
        edges = uniform_grid(0.0, edges[-1], int(math.ceil(edges[-1] / (edges[1] - edges[0]))))
        law = sampler_law_radial(config["sampler"], target, sched, edges, start=config["start"])
    est = tv_grid(law, radial_law(target, 1.0, 0.0, edges))
    floor = tv_grid(start_radial_law(target, sched, edges, "normal"), start_radial_law(target, sched, edges, "q_T")).value
    return [{"metric": "tv", **est.as_row(), "cells": edges.size - 1, "grid_error": law.grid_error, "lost": law.lost, "start_floor": floor}]


def run(config: dict, seed: int, device: str = "cpu") -> list[dict]:
    if config["kind"] == "ode":
        return _ode_rows(config)
    if config["kind"] == "sphere":
        return _sphere_rows(config)
    if config["kind"] == "ideal_ct":
        return _ideal_ct_rows(config)
    if config["kind"] == "family" and "radius" in FAMILY[config["member"]]:
        return _sphere_rows(config, FAMILY[config["member"]]["radius"])
    if config["kind"] == "family":
        target, v_small = family_target(config["d"], config["member"]), min(FAMILY[config["member"]]["variances"])
    else:
        target, v_small = scale_mixture(config["d"], config["w_small"], config["v_small"]), config["v_small"]
    return _mixture_rows(config, target, v_small)


def _mixture_rows(config: dict, target: GaussianMixture, v_small: float) -> list[dict]:
    """TV(Y_0, X_0) of the sampler on a scale mixture whose smallest variance is ``v_small``."""
    d, T = config["d"], config["T"]
    sched = linear_schedule(T)
    lo, hi, cells = radius_grid(d, v_small, T, config["cells_per_noise"])
    law_fn = lambda e: sampler_law_radial(config["sampler"], target, sched, e, start="normal")  # noqa: E731
    law = richardson_law(law_fn, lo, hi, cells)
    if law.lost > LOST_TOL:
        # large steps leave the noisy laws' range: the mean map can pass through the origin
        # (m(r) < 0, held only by a grid from 0), and the ICML 2024 sampler's perturbation
        # half-step raises the radius to about sqrt(r^2 + beta d / 2); same cell width
        wide = math.sqrt(hi**2 + float(sched.betas.max()) * d)
        cells = int(math.ceil(cells * wide / (hi - lo)))
        law = richardson_law(law_fn, 0.0, wide, cells)
    est = tv_grid(law, radial_law(target, 1.0, 0.0, law.edges))
    return [{"metric": "tv", **est.as_row(), "cells": cells, "grid_error": law.grid_error, "lost": law.lost}]


def _resolved(df: pd.DataFrame) -> pd.Series:
    """Rows whose law kept its mass on the grid and whose law error is at most RESOLUTION of the TV."""
    return (df["lost"] <= LOST_TOL) & (df["grid_error"] <= RESOLUTION * df["value"])


def _curve(df: pd.DataFrame, sampler: str | None, d: int, kind: str = "main"):
    s = df[(df["kind"] == kind) & (df["d"] == d) & ((df["sampler"] == sampler) if sampler is not None else True)].sort_values("T")
    return s["T"].to_numpy(float), s["value"].to_numpy(float), s["se"].to_numpy(float)


def _steps_rows(df: pd.DataFrame, sampler: str | None, kind: str = "main", eps_list=EPS) -> list[tuple[float, float, float]]:
    """(d, eps, T*) wherever the error's T curve of the ``kind`` rows (of ``sampler``; all of them
    where None) brackets eps."""
    rows = []
    for d in sorted(df["d"].unique()):
        T, v, _ = _curve(df, sampler, d, kind)
        for eps in eps_list:
            Ts = steps_to_eps(T, v, eps) if T.size >= 2 else math.nan
            if math.isfinite(Ts) and Ts > T.min():
                rows.append((float(d), eps, Ts))
    return rows


def _local_note(rows: pd.DataFrame, var: str, fixed: str, at: int) -> str:
    """The local exponents of the rows' values in ``var`` (one per pair of successive values) at ``fixed`` = ``at``."""
    s = rows[rows[fixed] == at].sort_values(var)
    x, v = s[var].to_numpy(float), s["value"].to_numpy(float)
    slopes = np.diff(np.log(v)) / np.diff(np.log(x))
    return f"Local {var} exponents at {fixed} = {at}, {var} = " + ", ".join(f"{int(a)}->{int(b)}: {e:.2f}" for a, b, e in zip(x[:-1], x[1:], slopes)) + "."


def _member_rows(df: pd.DataFrame, member: str) -> pd.DataFrame:
    """DDPM's rows at T = FAMILY_T for a member of the family (the main target's from the main
    configs, the sphere's of radius sqrt(d) from the sphere configs), on the family's dimensions."""
    at = df[(df["sampler"] == "ddpm") & (df["T"] == FAMILY_T) & df["d"].isin(df[df["kind"] == "family"]["d"].unique())]
    if member == MAIN_MEMBER:
        return at[at["kind"] == "main"]
    if member == SPHERE_MEMBER:
        return at[at["kind"] == "sphere"]
    return at[(at["kind"] == "family") & (at["member"] == member)] if "member" in at else at.iloc[:0]


def _family_exponents(df: pd.DataFrame) -> list[tuple[str, object]]:
    """(member, fit of TV ~ d^b at T = FAMILY_T) for each member of the family with three resolved points."""
    out = []
    for m in FAMILY:
        s = _member_rows(df, m)
        s = s[_resolved(s)].sort_values("d")
        if len(s) >= 3:
            out.append((m, fit_power_law(s["value"].to_numpy(float), d=s["d"].to_numpy(float))))
    return out


def checks(df: pd.DataFrame, figures_dir: str, profile: str) -> list[Check]:
    main = df[df["kind"] == "main"]
    ds, Ts = sorted(int(v) for v in main["d"].unique()), sorted(int(v) for v in main["T"].unique())
    ok = main[_resolved(main)]
    cfg = (f"profile {profile}; target 0.5 N(0, 0.5 I_d) + 0.5 N(0, I_d); linear schedule; start N(0, I_d); d in {ds}; T in {Ts}; "
           f"exact radial laws, Richardson on radius cells of at most sqrt(beta_1) (over the resolved laws: largest law error {ok['grid_error'].max():.1e} in TV, "
           f"largest mass off the grid {ok['lost'].max():.1e})")
    dep = "a toy analogue: the papers bound the worst case over targets; this is one rotation-invariant family"
    fig, grid = plt.subplots(2, 3, figsize=(17, 9.5), layout="constrained")
    axes = grid.ravel()
    out = []
    for i, (sampler, key) in enumerate(SAMPLER_BOUNDS.items()):
        if sampler not in set(main["sampler"]):  # results from before the sampler was added
            continue
        b = BOUNDS[key]
        every = main[main["sampler"] == sampler]
        s = every[(every["value"] < SATURATION) & _resolved(every)]
        sat = every[every["value"] >= SATURATION].sort_values(["d", "T"])
        unresolved = every[every["lost"] > LOST_TOL].sort_values(["d", "T"])
        coarse = every[(every["lost"] <= LOST_TOL) & (every["grid_error"] > RESOLUTION * every["value"])].sort_values(["d", "T"])
        fit = fit_power_law(s["value"].to_numpy(float), T=s["T"].to_numpy(float), d=s["d"].to_numpy(float))
        k_log = b.log_powers.get("T", 0)
        notes = ["Joint fit TV ~ C T^a d^b over every (d, T) with TV < 0.25; the product-target rows of accelerated grow like sqrt(d) by construction, this target does not.",
                 _local_note(main[main["sampler"] == sampler], "d", "T", max(Ts))]
        if len(sat):
            notes.append("Left out as saturated (TV >= 0.25, outside the power-law regime): " + ", ".join(f"d={int(r.d)}, T={int(r.T)}: {r.value:.3f}" for r in sat.itertuples()) + ".")
        if len(unresolved):
            notes.append(f"Left out as unresolved (more than {LOST_TOL:g} of the mass left the radius grid): " + ", ".join(f"d={int(r.d)}, T={int(r.T)}: lost {r.lost:.1e}" for r in unresolved.itertuples()) + ".")
        if len(coarse):
            notes.append("Left out as not resolved against their value (law error above a third of the TV): " + ", ".join(f"d={int(r.d)}, T={int(r.T)}: TV {r.value:.2e} +- {r.grid_error:.1e}" for r in coarse.itertuples()) + ".")
        for var in ("d", "T"):
            slack = log_slack(fit, "T", k_log) if var == "T" else 0.0
            out.append(Check(f"E (rotation-invariant): TV vs {var}, {sampler} (scale mixture, exact radial law)", b.citation, b.formula, var, b.exponents[var], fit, verdict(fit, var, b.exponents[var], slack), "figures/high_dim.png", cfg, dep, notes))
        rows = _steps_rows(main[_resolved(main)], sampler)
        out += _steps_checks(rows, b, f"E (rotation-invariant): steps to TV <= eps, {sampler}", "TV", cfg + f"; eps in {EPS}", dep)
        ls = LINESTYLES[sampler]
        for j, d in enumerate(ds):
            T, v, _ = _curve(main, sampler, d)
            axes[0].loglog(T, v, ls, marker="o", ms=3, lw=1, color=f"C{j}", label=f"d={d}" if i == 0 else None)
        sT = s[s["T"] == max(Ts)].sort_values("d")
        if len(sT):  # a fitted line from three resolved points up
            dfit = fit_power_law(sT["value"].to_numpy(float), d=sT["d"].to_numpy(float)) if len(sT) >= 3 else None
            rate_axes(axes[1], sT["d"], sT["value"], sT["se"], dfit, "d", b.exponents["d"], label=f"{sampler}, T={max(Ts)}", color=f"C{i}")
        if rows:
            for k, eps in enumerate(EPS):
                pts = [(r[0], r[2]) for r in rows if r[1] == eps]
                if pts:
                    x, y = zip(*pts)
                    axes[2].loglog(x, y, ls, marker="o", ms=3, lw=1, color=f"C{k}", label=f"eps={eps:g}" if i == 0 else None)
    x = np.array([min(ds), max(ds)], float)
    y0 = float(main[(main["sampler"] == "ddpm") & (main["T"] == max(Ts)) & (main["d"] == min(ds))]["value"].iloc[0])
    axes[1].loglog(x, y0 * (x / x[0]) ** 0.5, ":", color="grey", label="sqrt(d) (a product target)")
    axes[0].set(xlabel="T (steps)", ylabel="TV(output, X_0)", title="exact TV against T (solid DDPM, dotted exact-cov., dashed ICML 2024)")
    design_ticks(axes[0], Ts)
    axes[0].legend(fontsize=7, loc="lower left")
    top = main[main["T"] == max(Ts)]["value"]
    axes[1].set(xlabel="d", ylabel="TV(output, X_0)", title=f"TV against d at T = {max(Ts)} (bound slopes dotted)", ylim=(0.3 * top.min(), 30 * top.max()))
    axes[1].legend(fontsize=7, loc="upper left")
    axes[2].set(xlabel="d", ylabel="T* with TV <= eps", title="steps to accuracy eps (solid DDPM, dotted exact-cov., dashed ICML 2024)")
    axes[2].legend(fontsize=7, loc="lower right")
    out += _family_check(df, profile)
    out += _sphere_checks(df, axes[3], profile)
    out += _ideal_ct_checks(df, axes[4], profile)
    out += _ode_checks(df, axes[5], profile)
    save_figure(fig, figures_dir, NAME)
    return out


def _steps_checks(rows: list, b, claim: str, metric: str, cfg: str, dep: str, notes: list | None = None) -> list[Check]:
    """The exponents of d and 1/eps of a joint fit T* ~ C d^a eps^-b over the (d, eps, T*) ``rows``
    (:func:`_steps_rows`), each against the bound ``b``'s steps exponents, with ``notes``; none from fewer than 4 rows."""
    if len(rows) < 4:
        return []
    d_, eps_, T_ = map(np.array, zip(*rows))
    sfit = fit_power_law(T_, d=d_, inv_eps=1 / eps_)
    T_geo, k_log = float(np.exp(np.mean(np.log(T_)))), b.log_powers.get("T", 0)
    return [Check(f"{claim}: exponent of {label}", b.citation, f"T ~ d^{b.steps_exponents['d']:g} eps^-{b.steps_exponents['inv_eps']:g}", var, b.steps_exponents[var], sfit,
                  verdict(sfit, var, b.steps_exponents[var], steps_log_slack(b.steps_exponents[var], k_log, T_geo)), "figures/high_dim.png",
                  cfg + f"; T* interpolated log-log from the {metric}(T) curves ({len(rows)} (d, eps) pairs bracketed)", dep, list(notes or []))
            for var, label in (("d", "d"), ("inv_eps", "1/eps"))]


def _ode_checks(df: pd.DataFrame, ax, profile: str) -> list[Check]:
    """TV of the deterministic samplers on the scale mixture (exact radial pushforwards): per
    sampler and start, a joint fit TV ~ C T^a d^b against its bound's d exponent, and from the
    exact q_T the steps-to-eps exponents; the figure's sixth panel (TV against d at the largest T)."""
    ode = df[df["kind"] == "ode"] if "start" in df else df.iloc[:0]
    if ode.empty:  # results from before the rows were added
        ax.set_visible(False)
        return []
    ds, Ts = sorted(int(v) for v in ode["d"].unique()), sorted(int(v) for v in ode["T"].unique())
    ok = ode[_resolved(ode)]
    cfg = (f"profile {profile}; target 0.5 N(0, 0.5 I_d) + 0.5 N(0, I_d); linear schedule; d in {ds}; T in {Ts}; exact radial pushforward of the start "
           f"(largest Newton residual over the resolved laws {ok['grid_error'].max():.1e} in TV, largest mass off the grid {ok['lost'].max():.1e})")
    dep = "a toy analogue: the papers bound the worst case over targets; this is one rotation-invariant family"
    fits, out = {}, []
    for start in ("q_T", "normal"):
        for sampler in ODE_BOUNDS:
            every = ode[(ode["sampler"] == sampler) & (ode["start"] == start)]
            s = every[(every["value"] < SATURATION) & _resolved(every)]
            if s["d"].nunique() >= 3 and s["T"].nunique() >= 2:
                fits[sampler, start] = (fit_power_law(s["value"].to_numpy(float), T=s["T"].to_numpy(float), d=s["d"].to_numpy(float)), every, s)
    for (sampler, start), (fit, every, s) in fits.items():
        key = ODE_BOUNDS[sampler]
        left = every[~every.index.isin(s.index)].sort_values(["d", "T"])
        notes = ["Joint fit TV ~ C T^a d^b over every (d, T) with TV < 0.25 whose law kept its mass on the grid; a deterministic sampler is a bijection, so "
                 "its output law is the start's radial law pushed through r -> |Phi(r e_1)|.", _local_note(every, "d", "T", max(Ts))]
        if start == "normal":
            notes.append(f"Started from N(0, I_d): a bijection carries TV(N(0, I_d), q_T) unchanged, at most {every['start_floor'].max():.1e} here (largest at d = {int(every.loc[every['start_floor'].idxmax(), 'd'])}).")
        if len(left):
            notes.append("Left out (TV >= 0.25, mass off the grid, or a Newton residual above a third of the TV): " + ", ".join(f"d={int(r.d)}, T={int(r.T)}: TV {r.value:.3f}, lost {r.lost:.1e}" for r in left.itertuples()) + ".")
        claim = f"{sampler} (scale mixture, exact radial pushforward from {start})"
        if key is None:  # no bound with a d exponent: its design order in T is checked, its d exponent reported
            spec = SAMPLERS[sampler]
            notes.append(f"No bound with a d exponent in docs/papers.md: the d exponent is reported, b = {fit.exponents['d']:.3f} [{fit.ci['d'][0]:.3f}, {fit.ci['d'][1]:.3f}]; "
                         "the row checks the sampler's design order in T.")
            out.append(Check(f"E (rotation-invariant): TV vs T, {claim}", spec.reference, f"design order {spec.order}: TV ~ T^-{spec.order}", "T", -float(spec.order), fit,
                             verdict(fit, "T", -float(spec.order)), "figures/high_dim.png", cfg + f"; start {start}", dep, notes))
            continue
        b = BOUNDS[key]
        if sampler == "ddim":
            notes.append("The bound is that of the predecessor's first-order probability-flow step (x + (beta/2) s)/sqrt(alpha) (Li, Wei, Chen & Chi 2023, docs/papers.md), of which DDIM is a variant of the same order.")
        out.append(Check(f"E (rotation-invariant): TV vs d, {claim}", b.citation, b.formula, "d", b.exponents["d"], fit,
                         verdict(fit, "d", b.exponents["d"]), "figures/high_dim.png", cfg + f"; start {start}", dep, notes))
        out += _steps_checks(_steps_rows(ode[_resolved(ode) & (ode["start"] == start)], sampler, "ode"), b, f"E (rotation-invariant): steps to TV <= eps, {sampler} (from {start})", "TV", cfg + f"; start {start}; eps in {EPS}", dep)
    q = ode[(ode["start"] == "q_T") & (ode["T"] == max(Ts))]
    for i, sampler in enumerate(ODE_BOUNDS):
        c = q[(q["sampler"] == sampler) & _resolved(q)].sort_values("d")
        if len(c):
            f = fit_power_law(c["value"].to_numpy(float), d=c["d"].to_numpy(float)) if len(c) >= 3 else None
            rate_axes(ax, c["d"], c["value"], None, f, "d", BOUNDS[ODE_BOUNDS[sampler]].exponents["d"] if ODE_BOUNDS[sampler] else None, label=sampler, color=f"C{i}")
    top = q[_resolved(q)]["value"]
    ax.set(xlabel="d", ylabel="TV(output, X_0)", title=f"deterministic samplers from q_T, T = {max(Ts)}:\nexact radial pushforwards (bound slopes dotted)",
           ylim=(0.3 * top.min(), 30 * top.max()))
    ax.legend(fontsize=6, loc="upper left", ncol=2)
    return out


def _family_check(df: pd.DataFrame, profile: str) -> list[Check]:
    fits = _family_exponents(df)
    if not fits:
        return []
    b = BOUNDS["li_yan_ddpm"]
    worst, wfit = max(fits, key=lambda mf: mf[1].exponents["d"])
    table = "; ".join(f"{m}: b = {f.exponents['d']:.3f} [{f.ci['d'][0]:.3f}, {f.ci['d'][1]:.3f}]" for m, f in fits)
    ds = sorted(int(v) for v in df[df["kind"] == "family"]["d"].unique())
    cfg = (f"profile {profile}; DDPM, T = {FAMILY_T}; family: w N(0, v I_d) + (1 - w) N(0, I_d), w in {{0.2, 0.5}}, v in {{0.25, 0.5}}, "
           f"(N(0, 0.25 I_d) + N(0, 0.5 I_d) + N(0, I_d))/3 (TV to X_0), and the spheres of radius sqrt(d)/2 and sqrt(d) (TV(Y_1, X_1)); d in {ds}; exact radial laws")
    notes = [f"Fitted d exponents (TV ~ d^b at T = {FAMILY_T}): {table}.", f"The largest is the member {worst}: the empirical worst case of this family, next to the bound's d^1 (and the product targets' sqrt(d))."]
    return [Check("E (rotation-invariant family): largest d exponent of DDPM's TV", b.citation, b.formula, "d", b.exponents["d"], wfit, verdict(wfit, "d", b.exponents["d"]), "figures/high_dim.png", cfg,
                  f"a {len(FAMILY)}-member family, not the worst case over all targets", notes)]


def _sphere_checks(df: pd.DataFrame, ax, profile: str) -> list[Check]:
    """TV(Y_1, X_1) against d on the sphere of radius sqrt(d), per sampler: the d exponent of a fit
    TV ~ C T^a d^b over the points below SATURATION (in d alone where they hold one T); the local
    d exponents at every T and the TV against T in the notes; the figure's fourth panel."""
    sph = df[df["kind"] == "sphere"]
    if sph.empty:  # results from before the sphere was added
        ax.set_visible(False)
        return []
    ds, Ts = sorted(int(v) for v in sph["d"].unique()), sorted(int(v) for v in sph["T"].unique())
    ok = sph[_resolved(sph)]
    cpn = SPHERE_CELLS_PER_NOISE * int(sph["cells_per_noise"].iloc[0])
    cfg = (f"profile {profile}; uniform law on the sphere of radius sqrt(d) in R^d; linear schedule; start N(0, I_d); the chain stopped at step 1 "
           f"and compared with X_1; d in {ds}; T in {Ts}; exact radial laws, Richardson on radius cells of sqrt(beta_1)/{cpn} (over the resolved laws: "
           f"largest law error {ok['grid_error'].max():.1e} in TV, largest mass off the grid {ok['lost'].max():.1e})")
    dep = ("a toy analogue on one singular rotation-invariant target, with the linear schedule rather than the bounds' (its first steps' "
           "relative size beta_t/sigma_t^2 ~ 1/t does not shrink with T, so the TV against T is reported, not checked)")
    out = []
    for i, sampler in enumerate(SPHERE_SAMPLERS):
        b = BOUNDS[SAMPLER_BOUNDS[sampler]]
        every = sph[sph["sampler"] == sampler]
        fitted = every[_resolved(every) & (every["value"] < SATURATION)].sort_values(["d", "T"])
        left = every[~every.index.isin(fitted.index)].sort_values(["d", "T"])
        notes = [" ".join(_local_note(every, "d", "T", T) for T in Ts),
                 "TV against T (reported, not checked; see the departure; the bound's T exponent is " + f"{b.exponents['T']:g}): " + " ".join(_local_note(every, "T", "d", d) for d in ds)]
        steps = _steps_rows(every[_resolved(every)], sampler, "sphere")
        if steps:
            notes.append("Steps to TV <= eps (interpolated log-log): " + ", ".join(f"eps={e:g}, d={int(d)}: T*={T:.0f}" for d, e, T in sorted(steps, key=lambda r: (r[1], r[0]))) + ".")
        if len(left):
            notes.append("Left out of the fit (TV >= 0.25, off the grid or not resolved against their value): " + ", ".join(f"d={int(r.d)}, T={int(r.T)}: TV {r.value:.3f} +- {r.grid_error:.1e}, lost {r.lost:.1e}" for r in left.itertuples()) + ".")
        # joint in (T, d) where the fitted points span two T or more, in d alone otherwise
        variables = {"d": fitted["d"].to_numpy(float)} | ({"T": fitted["T"].to_numpy(float)} if fitted["T"].nunique() >= 2 else {})
        if fitted["d"].nunique() >= 3:
            fit = fit_power_law(fitted["value"].to_numpy(float), **variables)
            over = "joint fit TV ~ C T^a d^b" if "T" in variables else f"fit TV ~ C d^b at T = {int(fitted['T'].iloc[0])}"
            out.append(Check(f"E (rotation-invariant): TV vs d, {sampler} (sphere of radius sqrt(d), TV(Y_1, X_1))", b.citation, b.formula, "d", b.exponents["d"], fit,
                             verdict(fit, "d", b.exponents["d"]), "figures/high_dim.png", cfg + f"; {over} over every point with TV < {SATURATION:g}", dep, notes))
        for j, T in enumerate(Ts):
            c = every[every["T"] == T].sort_values("d")
            ax.loglog(c["d"], c["value"], LINESTYLES[sampler], marker="o", ms=3, lw=1, color=f"C{j}", label=f"T={T}" if i == 0 else None)
    ax.set(xlabel="d", ylabel="TV(Y_1, X_1)", title="sphere of radius sqrt(d): TV(Y_1, X_1) against d\n(solid DDPM, dotted exact-cov.)",
           ylim=(0.5 * sph["value"].min(), 1.5 * sph["value"].max()))
    ax.legend(fontsize=7, loc="lower right")
    return out


def _ideal_ct_checks(df: pd.DataFrame, ax, profile: str) -> list[Check]:
    """W2 of ideal consistency training on the scale mixture: a joint fit W2 ~ C T^a d^b against
    Li, Huang & Wei's d^(5/2) log^5 T / T; the figure's fifth panel."""
    ct = df[df["kind"] == "ideal_ct"]
    if ct.empty:  # results from before the rows were added
        ax.set_visible(False)
        return []
    b = BOUNDS["li_huang_wei_ct"]
    ds, Ts = sorted(int(v) for v in ct["d"].unique()), sorted(int(v) for v in ct["T"].unique())
    ok = ct[_resolved(ct)]
    left = ct[~_resolved(ct)].sort_values(["d", "T"])
    fit = fit_power_law(ok["value"].to_numpy(float), T=ok["T"].to_numpy(float), d=ok["d"].to_numpy(float))
    cfg = (f"profile {profile}; target 0.5 N(0, 0.5 I_d) + 0.5 N(0, I_d); linear schedule; one step from X_T ~ N(0, I_d), against X_1; d in {ds}; T in {Ts}; "
           f"radial recursion (Gauss-Hermite x chi-square quadrature, cubic spline on {int(ct['cells'].iloc[0]) // 4 + 1} radii), W2 of the radial laws on "
           f"{int(ct['cells'].iloc[0])} cells (largest change from half the cells {ok['grid_error'].max():.1e}, largest mass off the grid {ok['lost'].max():.1e})")
    dep = "zero learning error (the ideal recursion, epsilon = epsilon_F = 0); one rotation-invariant target, not the worst case the bound covers"
    notes = ["Joint fit W2 ~ C T^a d^b over every resolved (d, T); the product-target rows of consistency_training grow like sqrt(d) by construction.",
             _local_note(ct, "d", "T", max(Ts)), " ".join(_local_note(ct, "T", "d", d) for d in ds)]
    if len(left):
        notes.append(f"Left out as unresolved (more than {LOST_TOL:g} of the mass off the grid, or a grid change above a third of the value): "
                     + ", ".join(f"d={int(r.d)}, T={int(r.T)}: W2 {r.value:.3g}, lost {r.lost:.1e}" for r in left.itertuples()) + ".")
    out = [Check(f"A (rotation-invariant): ideal-CT W2 vs {var} (scale mixture, radial recursion)", b.citation, b.formula, var, b.exponents[var], fit,
                 verdict(fit, var, b.exponents[var], log_slack(fit, "T", b.log_powers.get("T", 0)) if var == "T" else 0.0), "figures/high_dim.png", cfg, dep, notes) for var in ("d", "T")]
    steps_notes = ["The exponent of 1/eps is minus the inverse of the local T exponent of W2 where each eps is bracketed; W2 falls like 1/T at small d but more slowly at "
                   "d >= 512 over these T (the local exponents in the W2-vs-T row's notes), so the pairs mix two regimes and the CI is as wide as that spread. "
                   "Each eps is bracketed at one or two d only (W2 spans 0.008 at d = 1 to 5.8 at d = 4096)."]
    out += _steps_checks(_steps_rows(ok, None, "ideal_ct", EPS_CT), b, "A (rotation-invariant): ideal-CT steps to W2 <= eps", "W2", cfg + f"; eps in {EPS_CT}", dep, steps_notes)
    for j, d in enumerate(ds):
        c = ct[ct["d"] == d].sort_values("T")
        ax.loglog(c["T"], c["value"], marker="o", ms=3, lw=1, color=f"C{j}", label=f"d={d}")
    design_ticks(ax, Ts)
    ax.set(xlabel="T (steps)", ylabel="W2(f_T(X_T), X_1)", title="ideal consistency training on the scale mixture:\nW2 against T")
    ax.legend(fontsize=7, loc="lower left")
    return out

