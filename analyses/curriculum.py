"""Curriculum weighting: easy samples first and hard ones later (or the reverse, or self-paced), and
what the schedule does to the estimate, to the posterior and to the classifier along the way.

Question. Curriculum learning weights samples by how hard they are and shifts the weight from easy
to hard ones as training progresses. Fitting the same weighted logistic regression at each phase of
such a schedule, which path do the WMLE, MAP and posterior take, where do they end compared with
the unweighted MLE and the truth, and how sure is the posterior at each phase?

Model (``models.classes``, built once and compiled once; each phase's weights swapped in with
``pm.set_data``):

    coef_j ~ Normal(0, 2.5),  intercept ~ Normal(0, 5)
    log p(theta | y, w) = log p(theta) + sum_i w_i log Bernoulli(y_i | sigmoid(intercept + x_i . coef))

Data (simulated, so that easy and hard are defined by the truth). n = 500 samples x_i ~ N(0, I_2),
true log-odds eta_i = -4 + 3 x_i1 - 2 x_i2 (17% minority with seed 2026), labels
y_i ~ Bernoulli(sigmoid(eta_i)). The label noise of this model sits at the boundary: a label falls
on the wrong side of eta = 0 with probability sigmoid(-|eta_i|), about a half on the boundary and
under 2% beyond |eta| = 4. The truth is a point of the model. Test set: 10,000 fresh samples of the
same process.

Difficulty (``weights.margin_difficulty``): the distance to the true boundary, |eta_i| / ||coef||,
turned into a rank, ``d_i = 1 - rank(|eta_i|) / (n - 1)``: 1 for the sample nearest the boundary, 0
for the farthest. On real data, where the boundary is unknown, a reference model's per-sample loss
takes its place (``weights.loss_difficulty``), as in the ``self_paced`` schedule here.

Schedules (``weights.curriculum``, sharpness s = 4; weights normalised to mean 1, so every phase
has total weight n and phases differ in shape only), at progress t = 0, 1/6, ..., 1 (7 phases;
``--quick``: 0, 1/2, 1):

* ``easy_to_hard``: w_i proportional to exp(s (2t - 1) d_i): easy samples weigh most at t = 0, flat
  weights at t = 1/2 (exactly the unweighted fit), hard samples most at t = 1.
* ``hard_to_easy``: the same tilt run backwards, exp(s (1 - 2t) d_i). Its weights at progress t are
  those of ``easy_to_hard`` at 1 - t, so each distinct weight vector is fitted once and reused
  (equal to within 1e-12 relative: ``SAME_WEIGHTS_RTOL``).
* ``self_paced``: d_i is the rank of sample i's loss -log p(y_i | x_i, theta_current) under the
  current fit (the unweighted MLE before the first phase, then the previous phase's WMLE, or its MAP
  where no WMLE exists); samples whose rank is below the threshold t are admitted, softly
  (weight floor + (1 - floor) sigmoid(s (t - d_i)), floor 0.01), so the admitted share grows with
  progress. Its phases depend on each other; every other phase is a fit on its own weights alone.

Per (schedule, phase): WMLE, MAP (``inference.mle`` / ``map_estimate`` on the one model) and the NUTS
posterior (``inference.RepeatedNUTS``, 4 chains x (500 + 1000) by default, compiled once per worker
process, distinct fits spread over the cores), each scored on the test set by minority recall at
P = 0.5 and Brier score (the posterior per draw: mean and 94% HDI over 400 thinned draws).

Outputs (``figures/curriculum/``): ``coefficient_paths.png``, ``weight_profiles.png``,
``decision_boundaries.png``, ``metrics.png``; (``results/curriculum/``): one NetCDF posterior per
(schedule, phase) with its weights in ``constant_data`` and the pointwise weighted log-likelihood,
``summary.csv``.
"""

from __future__ import annotations

import logging
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass

import arviz as az
import matplotlib.pyplot as plt
import numpy as np
import pymc as pm
from scipy import special

from analyses import plotting, tables
from analyses.cli import Report, Settings
from analyses.output import Output
from models import classes, inference
from models import weights as weights_lib
from models.inference import UnboundedLikelihoodError

N_TRAIN = 500
N_TEST = 10_000
TRUE_INTERCEPT = -4.0
TRUE_COEF = np.array([3.0, -2.0])
FEATURES = ["x1", "x2"]
CLASS_NAMES = ["majority", "minority"]
SCHEDULES = ("easy_to_hard", "hard_to_easy", "self_paced")
SHARPNESS = 4.0
PHASES, PHASES_QUICK = 7, 3
# A 3-parameter log-concave posterior: 500 tuning steps adapt NUTS (each fit's diagnostics check it).
SAMPLER_DEFAULTS = {"draws": 1000, "tune": 500, "chains": 4}
THRESHOLD = 0.5
METRIC_DRAWS = 400
METRICS = ("minority_recall", "brier")
SAME_WEIGHTS_RTOL = 1e-12  # weights this close give the same fit to every printed digit
SCHEDULE_COLORS = {"easy_to_hard": "C0", "hard_to_easy": "C3", "self_paced": "C4"}
PARAMETERS = ("intercept", *(f"coef[{f}]" for f in FEATURES))


@dataclass(frozen=True)
class Data:
    X: np.ndarray
    y: np.ndarray
    eta: np.ndarray  # true log-odds of the training samples
    X_test: np.ndarray
    y_test: np.ndarray


def simulate(rng, n: int = N_TRAIN, n_test: int = N_TEST) -> Data:
    """Logistic labels on x ~ N(0, I_2): the noise is where sigmoid(eta) is near 1/2, at the boundary."""
    def draw(size):
        X = rng.normal(size=(size, len(FEATURES)))
        eta = TRUE_INTERCEPT + X @ TRUE_COEF
        return X, (rng.uniform(size=size) < special.expit(eta)).astype(np.int64), eta

    X, y, eta = draw(n)
    X_test, y_test, _ = draw(n_test)
    return Data(X, y, eta, X_test, y_test)


def _progress(message: str) -> None:
    print(f"curriculum: {message}", file=sys.stderr, flush=True)


def _label(schedule: str, progress: float) -> str:
    return f"{schedule}_progress_{progress:.2f}"


def _vector(estimate: dict) -> np.ndarray:
    """(intercept, coef...) of a point estimate, in the order of ``PARAMETERS``."""
    return np.r_[estimate["intercept"], estimate["coef"]]


def sample_loss(X, y, estimate: dict) -> np.ndarray:
    """Each sample's log loss -log p(y_i | x_i, theta) at a point estimate (self-paced difficulty)."""
    p = classes.predict_proba(X, estimate["intercept"], estimate["coef"])
    return -np.log(np.where(y == 1, p, 1 - p))


def metrics(probability: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Minority recall at P = 0.5 and Brier score for each row of ``probability`` (draws x samples)."""
    probability = np.atleast_2d(probability)
    return {"minority_recall": (probability[:, y == 1] > THRESHOLD).mean(axis=1),
            "brier": ((probability - y) ** 2).mean(axis=1)}


def _estimate(estimator, model):
    try:
        return estimator(model), None
    except UnboundedLikelihoodError as err:
        return None, str(err)


# --------------------------------------------------------------------------- fitting (worker processes)
#
# Every fit is WMLE, MAP and NUTS on one model per process, built and compiled once; the weights are
# swapped in with ``pm.set_data``. A task is either one fixed weight vector of the tilted schedules,
# or the whole self-paced chain, whose phases depend on each other.

_FITTERS: dict = {}  # per process: (draws, tune, chains) -> Fitter


class Fitter:
    """WMLE, MAP and posterior of the curriculum model at any weights, compiled once."""

    def __init__(self, X, y, *, draws: int, tune: int, chains: int):
        self.X, self.y = X, y
        self.model = classes.build_model(X, y, feature_names=FEATURES, class_names=CLASS_NAMES)
        self.sampler = inference.RepeatedNUTS(self.model, draws=draws, tune=tune, chains=chains)

    def point_estimates(self, weights: np.ndarray) -> dict:
        pm.set_data({"weights": weights}, model=self.model)
        wmle, failure = _estimate(inference.mle, self.model)
        return {"weights": weights, "wmle": wmle, "wmle_failure": failure,
                "map": inference.map_estimate(self.model)}

    def posterior(self, weights: np.ndarray, seed: int) -> az.InferenceData:
        """NUTS draws with coordinates, data and weights (``constant_data``) and the pointwise weighted
        log-likelihood, computed by the model itself at these weights."""
        light = self.sampler({"weights": weights}, random_seed=seed)  # sets the weights in the model
        idata = az.from_dict(
            posterior={name: light.posterior[name].values for name in ("intercept", "coef")},
            sample_stats={name: light.sample_stats[name].values for name in ("diverging", "energy")},
            constant_data={"X": self.X, "y": self.y, "weights": weights},
            coords={"feature": FEATURES, "obs_id": np.arange(self.y.size)},
            dims={"coef": ["feature"], "X": ["obs_id", "feature"], "y": ["obs_id"], "weights": ["obs_id"]},
        )
        pm.compute_log_likelihood(idata, model=self.model, extend_inferencedata=True, progressbar=False)
        idata.attrs["random_seed"] = seed
        return idata

    def fit(self, weights: np.ndarray, seed: int) -> dict:
        return {**self.point_estimates(weights), "idata": self.posterior(weights, seed)}


def _fitter(X, y, draws: int, tune: int, chains: int) -> Fitter:
    config = (draws, tune, chains)
    if config not in _FITTERS:
        _FITTERS[config] = Fitter(X, y, draws=draws, tune=tune, chains=chains)
    return _FITTERS[config]


def _quiet_worker() -> None:
    import pymc  # noqa: F401  (pymc sets its logger level on import)

    logging.getLogger("pymc").setLevel(logging.WARNING)


def fit_fixed(X, y, weights: np.ndarray, seed: int, sampler_settings: tuple) -> dict:
    """One fit at the given weights (a task of the tilted schedules)."""
    return _fitter(X, y, *sampler_settings).fit(weights, seed)


def fit_self_paced(X, y, phases: np.ndarray, seeds: list[int], sampler_settings: tuple) -> dict:
    """The self-paced chain: the unweighted MLE, then per phase the difficulty from the current fit's
    per-sample loss, its weights and their fit. Returns ``{"reference": MLE, "fits": [...]}``."""
    fitter = _fitter(X, y, *sampler_settings)
    reference = fitter.point_estimates(np.ones(y.size))["wmle"]
    current, fits = reference, []
    for progress, seed in zip(phases, seeds):
        difficulty = weights_lib.loss_difficulty(sample_loss(X, y, current))
        w = weights_lib.curriculum(difficulty, progress, schedule="self_paced", sharpness=SHARPNESS)
        fit = {**fitter.fit(w, seed), "difficulty": difficulty}
        fits.append(fit)
        current = fit["wmle"] if fit["wmle"] is not None else fit["map"]
        _progress(f"  self_paced, t = {progress:.2f} fitted")
    return {"reference": reference, "fits": fits}


def fit_all(data: Data, phases: np.ndarray, settings: Settings, rng) -> tuple[dict, dict]:
    """``(fits, reference)``: WMLE, MAP and posterior per (schedule, phase), and the unweighted MLE.

    Tilted schedules: each distinct weight vector is fitted once (``hard_to_easy`` at progress t has
    the weights of ``easy_to_hard`` at 1 - t). The self-paced chain runs as one task, submitted first
    as the longest. ``--quick`` runs in this process: starting workers would cost more than its fits.
    """
    difficulty = weights_lib.margin_difficulty(data.eta)
    tilted = {(schedule, phase): weights_lib.curriculum(difficulty, progress, schedule=schedule,
                                                        sharpness=SHARPNESS)
              for schedule in SCHEDULES if schedule != "self_paced" for phase, progress in enumerate(phases)}
    distinct, same_as = [], {}
    for key, w in tilted.items():
        same_as[key] = next((first for first in distinct
                             if np.allclose(tilted[first], w, rtol=SAME_WEIGHTS_RTOL, atol=0)), key)
        if same_as[key] == key:
            distinct.append(key)
    seeds = {key: int(rng.integers(2**31 - 1)) for key in [*distinct, *(("self_paced", p) for p in
                                                                          range(len(phases)))]}
    sampler_settings = (settings.draws, settings.tune, settings.chains)
    self_paced_seeds = [seeds["self_paced", p] for p in range(len(phases))]
    workers = 1 if settings.quick else min(inference.available_cores(), 1 + len(distinct))
    _progress(f"fitting {len(distinct)} distinct tilted weight vectors and {len(phases)} self-paced phases: "
              f"WMLE, MAP, NUTS {settings.chains} x ({settings.tune} + {settings.draws}), "
              f"{workers} process(es)")
    done = {}
    if workers == 1:
        chain = fit_self_paced(data.X, data.y, phases, self_paced_seeds, sampler_settings)
        for key in distinct:
            done[key] = fit_fixed(data.X, data.y, tilted[key], seeds[key], sampler_settings)
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_quiet_worker) as pool:
            chain_future = pool.submit(fit_self_paced, data.X, data.y, phases, self_paced_seeds,
                                       sampler_settings)
            futures = {pool.submit(fit_fixed, data.X, data.y, tilted[key], seeds[key], sampler_settings): key
                       for key in distinct}
            for future in as_completed(futures):
                key = futures[future]
                done[key] = future.result()
                _progress(f"  tilted weights {len(done)}/{len(distinct)} fitted "
                          f"({_label(key[0], phases[key[1]])})")
            chain = chain_future.result()
    fits = {}
    for (schedule, phase), source in same_as.items():
        fits[schedule, phase] = {**done[source], "difficulty": difficulty, "same_weights_as": source}
    for phase, fit in enumerate(chain["fits"]):
        fits["self_paced", phase] = {**fit, "same_weights_as": ("self_paced", phase)}
    for (schedule, phase), fit in fits.items():
        fit.update(schedule=schedule, phase=phase, progress=float(phases[phase]))
    return fits, chain["reference"]


def _thinned(idata, name: str, count: int = METRIC_DRAWS) -> np.ndarray:
    values = idata.posterior[name].stack(sample=("chain", "draw")).transpose("sample", ...).values
    return values[np.linspace(0, len(values) - 1, min(count, len(values))).astype(int)]


def score(data: Data, fit: dict) -> dict:
    """Test-set metrics of the WMLE and MAP (numbers) and of the posterior (one per thinned draw)."""
    scores = {}
    for key in ("wmle", "map"):
        if fit[key] is not None:
            p = classes.predict_proba(data.X_test, fit[key]["intercept"], fit[key]["coef"])
            scores[key] = {name: float(v[0]) for name, v in metrics(p, data.y_test).items()}
    p_draws = classes.predict_proba(data.X_test, _thinned(fit["idata"], "intercept"),
                                    _thinned(fit["idata"], "coef"))
    scores["posterior"] = metrics(p_draws, data.y_test)
    return scores


# --------------------------------------------------------------------------- tables


def _point_rows(label: str, estimator: str, estimate: dict, scores: dict) -> list[dict]:
    rows = [tables.point(label, estimator, name, value)
            for name, value in zip(PARAMETERS, _vector(estimate))]
    return rows + [tables.point(label, estimator, metric, scores[metric]) for metric in METRICS]


def fit_rows(fit: dict) -> list[dict]:
    label = _label(fit["schedule"], fit["progress"])
    rows = [tables.point(label, "weights", "progress", fit["progress"]),
            tables.point(label, "weights", "sum", fit["weights"].sum()),
            tables.point(label, "weights", "kish_ess", weights_lib.kish_ess(fit["weights"])),
            tables.point(label, "weights", "max_over_min", fit["weights"].max() / fit["weights"].min()),
            tables.point(label, "wmle", "exists", int(fit["wmle"] is not None))]
    if fit["wmle"] is not None:
        rows += _point_rows(label, "wmle", fit["wmle"], fit["scores"]["wmle"])
    rows += _point_rows(label, "map", fit["map"], fit["scores"]["map"])
    rows += tables.posterior_rows(label, fit["idata"], ["intercept", "coef"])
    for metric in METRICS:
        draws = fit["scores"]["posterior"][metric]
        rows.append(tables.interval(label, "posterior", metric, draws.mean(),
                                    *az.hdi(draws, hdi_prob=tables.HDI_PROB)))
    return rows + tables.diagnostic_rows(label, fit["diagnostics"])


def reference_rows(data: Data, reference: dict) -> list[dict]:
    truth = {"intercept": TRUE_INTERCEPT, "coef": TRUE_COEF}
    rows = []
    for label, estimator, estimate in (("truth", "truth", truth), ("unweighted", "mle", reference)):
        p = classes.predict_proba(data.X_test, estimate["intercept"], estimate["coef"])
        rows += _point_rows(label, estimator, estimate, {k: v[0] for k, v in metrics(p, data.y_test).items()})
    rows.append(tables.point("data", "data", "minority_share", data.y.mean()))
    rows.append(tables.point("data", "data", "labels_across_true_boundary",
                             np.mean((data.eta > 0) != (data.y == 1))))
    return rows


# --------------------------------------------------------------------------- main


def main(settings: Settings, output: Output) -> Report:
    plotting.apply_style()
    rng = np.random.default_rng(settings.seed)
    data = simulate(rng)
    phases = np.linspace(0.0, 1.0, PHASES_QUICK if settings.quick else PHASES)
    _progress(f"{data.y.size} samples, {data.y.mean():.0%} minority; {len(SCHEDULES)} schedules x "
              f"{len(phases)} phases")
    fits, reference = fit_all(data, phases, settings, rng)
    rows, diagnostics, scores = reference_rows(data, reference), {}, {}
    for key, fit in fits.items():
        label = _label(fit["schedule"], fit["progress"])
        source = fit["same_weights_as"]
        if fit["wmle_failure"]:
            _progress(f"{label}: no WMLE: {fit['wmle_failure']}")
        if source not in scores:
            scores[source] = (score(data, fit), inference.diagnose(fit["idata"]))
        fit["scores"], fit["diagnostics"] = scores[source]
        diagnostics[label] = fit["diagnostics"]
        output.posterior(fit["idata"], f"{label}.nc", fit["diagnostics"], model=label,
                         schedule=fit["schedule"], progress=fit["progress"], sharpness=SHARPNESS,
                         same_weights_as=_label(source[0], phases[source[1]]), draws=settings.draws,
                         tune=settings.tune, chains=settings.chains, sampler="inference.RepeatedNUTS (pymc)")
        rows += fit_rows(fit)

    output.figure(_plot_paths(fits, phases, reference), "coefficient_paths.png")
    output.figure(_plot_weight_profiles(fits, phases), "weight_profiles.png")
    output.figure(_plot_boundaries(data, fits, phases, reference), "decision_boundaries.png")
    output.figure(_plot_metrics(data, fits, phases, reference), "metrics.png")
    return Report(rows=rows, fits=diagnostics)


# --------------------------------------------------------------------------- figures


def _pretty(schedule: str) -> str:
    return schedule.replace("_", " ")


def _posterior_draws(idata, index: int) -> np.ndarray:
    """Draws of parameter ``PARAMETERS[index]`` (0: intercept, then the coefficients)."""
    posterior = idata.posterior
    values = posterior["intercept"] if index == 0 else posterior["coef"].isel(feature=index - 1)
    return values.values.ravel()


def _plot_paths(fits: dict, phases: np.ndarray, reference: dict):
    truth = np.r_[TRUE_INTERCEPT, TRUE_COEF]
    unweighted = _vector(reference)
    fig, axs = plt.subplots(len(SCHEDULES), len(PARAMETERS), figsize=(13, 3.1 * len(SCHEDULES)),
                            sharex=True, sharey="col", squeeze=False)
    for row, schedule in zip(axs, SCHEDULES):
        mine = [fits[schedule, phase] for phase in range(len(phases))]
        for index, ax in enumerate(row):
            draws = [_posterior_draws(fit["idata"], index) for fit in mine]
            hdi = np.array([az.hdi(d, hdi_prob=tables.HDI_PROB) for d in draws])
            color = SCHEDULE_COLORS[schedule]
            ax.fill_between(phases, hdi[:, 0], hdi[:, 1], color=color, alpha=0.2, label="posterior 94% HDI")
            ax.plot(phases, [d.mean() for d in draws], "o-", color=color, label="posterior mean")
            with_wmle = [(fit["progress"], _vector(fit["wmle"])[index]) for fit in mine
                         if fit["wmle"] is not None]
            if with_wmle:
                ax.plot(*zip(*with_wmle), marker="x", linewidth=1.3, label="WMLE",
                        **plotting.ESTIMATOR_STYLE["mle"])
            ax.plot(phases, [_vector(fit["map"])[index] for fit in mine], marker="+", linewidth=1.3,
                    label="MAP", **plotting.ESTIMATOR_STYLE["map"])
            ax.axhline(unweighted[index], color="0.5", linestyle="-.", linewidth=1.2, label="unweighted MLE")
            ax.axhline(truth[index], color="C2", linewidth=1.5, label="truth")
            ax.set_title(f"{_pretty(schedule)}: {PARAMETERS[index]}")
            if schedule == SCHEDULES[-1]:
                ax.set_xlabel("progress t")
        row[0].set_ylabel("estimate")
    handles, labels = axs[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=6, bbox_to_anchor=(0.5, -0.02))
    fig.suptitle(f"Path of the estimates across {len(phases)} phases of each schedule (weights normalised "
                 "to mean 1 at every phase)", y=1.0)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


def _plot_weight_profiles(fits: dict, phases: np.ndarray):
    fig, axs = plt.subplots(1, len(SCHEDULES), figsize=(4.4 * len(SCHEDULES), 5.2), sharey=True)
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(phases)))
    for ax, schedule in zip(axs, SCHEDULES):
        for phase, color in zip(range(len(phases)), colors):
            fit = fits[schedule, phase]
            order = np.argsort(fit["difficulty"])
            ax.plot(fit["difficulty"][order], fit["weights"][order], color=color, linewidth=1.6,
                    label=f"t = {fit['progress']:.2f} (Kish ESS {weights_lib.kish_ess(fit['weights']):.0f})")
        ax.set_yscale("log")
        what = ("rank of the loss under the current fit" if schedule == "self_paced"
                else "closeness to the true boundary (rank)")
        ax.set(title=_pretty(schedule), xlabel=f"difficulty: {what}", xlim=(0, 1))
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=2, frameon=False)
    axs[0].set_ylabel("weight (mean 1; log scale)")
    fig.suptitle(f"Weight of each of the {fits[SCHEDULES[0], 0]['weights'].size} samples against its "
                 f"difficulty at each phase (sharpness {SHARPNESS:g})", y=1.02)
    fig.tight_layout()
    return fig


def _boundary(intercept, coef, x1):
    """x2 on the P = 0.5 line for each x1."""
    return -(intercept + coef[0] * x1) / coef[1]


def _plot_boundaries(data: Data, fits: dict, phases: np.ndarray, reference: dict):
    shown = sorted({0, len(phases) // 2, len(phases) - 1})
    fig, axs = plt.subplots(len(SCHEDULES), len(shown), figsize=(4.0 * len(shown), 3.7 * len(SCHEDULES)),
                            sharex=True, sharey=True, squeeze=False)
    x1 = np.linspace(-3.5, 3.5, 200)
    grid = np.stack(np.meshgrid(x1, x1), axis=-1).reshape(-1, 2)  # rows: (x1[j], x2[i])
    for row, schedule in zip(axs, SCHEDULES):
        for ax, phase in zip(row, shown):
            fit = fits[schedule, phase]
            size = 12 * fit["weights"]  # marker area proportional to the weight
            for label_value, color, name in ((0, "0.6", CLASS_NAMES[0]), (1, "C1", CLASS_NAMES[1])):
                mask = data.y == label_value
                ax.scatter(*data.X[mask].T, s=size[mask], color=color, alpha=0.6, linewidth=0,
                           label=f"{name} (area ~ weight)")
            intercept, coef = _thinned(fit["idata"], "intercept", 1000), _thinned(fit["idata"], "coef", 1000)
            share = np.mean(intercept[:, None] + coef @ grid.T > 0, axis=0).reshape(x1.size, x1.size)
            ax.contourf(x1, x1, share, levels=[0.03, 0.97], colors=[SCHEDULE_COLORS[schedule]], alpha=0.25)
            mean = {k: fit["idata"].posterior[k].mean(dim=("chain", "draw")).values
                    for k in ("intercept", "coef")}
            ax.plot(x1, _boundary(mean["intercept"], mean["coef"], x1), color=SCHEDULE_COLORS[schedule],
                    linewidth=2, label="posterior mean")
            if fit["wmle"] is not None:
                ax.plot(x1, _boundary(fit["wmle"]["intercept"], fit["wmle"]["coef"], x1), linewidth=1.3,
                        label="WMLE", **plotting.ESTIMATOR_STYLE["mle"])
            ax.plot(x1, _boundary(reference["intercept"], reference["coef"], x1), color="0.5",
                    linestyle="-.", linewidth=1.2, label="unweighted MLE")
            ax.plot(x1, _boundary(TRUE_INTERCEPT, TRUE_COEF, x1), color="C2", linewidth=1.2, label="truth")
            ax.set(title=f"{_pretty(schedule)}, t = {fit['progress']:.2f}", xlim=(-3.5, 3.5),
                   ylim=(-3.5, 3.5))
            if schedule == SCHEDULES[-1]:
                ax.set_xlabel(FEATURES[0])
        row[0].set_ylabel(FEATURES[1])
    handles, labels = axs[0, 0].get_legend_handles_labels()
    handles.insert(2, plt.Rectangle((0, 0), 1, 1, color="0.6", alpha=0.4))
    labels.insert(2, "3-97% of posterior draws say minority")
    fig.legend(handles, labels, loc="lower center", ncol=4, bbox_to_anchor=(0.5, -0.03), markerscale=2)
    fig.suptitle("P = 0.5 boundary at the first, middle and last phase (minority predicted below-right):\n"
                 "the line barely moves; how sure the posterior is of it does", y=1.01)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


def _plot_metrics(data: Data, fits: dict, phases: np.ndarray, reference: dict):
    fig, axs = plt.subplots(1, len(METRICS), figsize=(11, 4.0))
    titles = {"minority_recall": "minority recall at P = 0.5", "brier": "Brier score"}
    p_reference = classes.predict_proba(data.X_test, reference["intercept"], reference["coef"])
    p_truth = classes.predict_proba(data.X_test, TRUE_INTERCEPT, TRUE_COEF)
    for ax, metric in zip(axs, METRICS):
        for offset, schedule in zip((-0.01, 0.0, 0.01), SCHEDULES):
            mine = [fits[schedule, phase] for phase in range(len(phases))]
            draws = [fit["scores"]["posterior"][metric] for fit in mine]
            hdi = np.array([az.hdi(d, hdi_prob=tables.HDI_PROB) for d in draws])
            color = SCHEDULE_COLORS[schedule]
            ax.errorbar(phases + offset, [d.mean() for d in draws],
                        yerr=[[d.mean() for d in draws] - hdi[:, 0], hdi[:, 1] - [d.mean() for d in draws]],
                        fmt="o-", color=color, capsize=2, label=f"{_pretty(schedule)}: posterior, 94% HDI")
            with_wmle = [(fit["progress"] + offset, fit["scores"]["wmle"][metric]) for fit in mine
                         if "wmle" in fit["scores"]]
            ax.plot(*zip(*with_wmle), "x", color=color, markersize=7)
        ax.axhline(metrics(p_reference, data.y_test)[metric][0], color="0.5", linestyle="-.",
                   label="unweighted MLE")
        ax.axhline(metrics(p_truth, data.y_test)[metric][0], color="C2", linestyle="-", label="truth")
        ax.set(title=f"{titles[metric]} on {data.y_test.size:,} test samples", xlabel="progress t")
    axs[0].plot([], [], "x", color="black", label="WMLE (in the schedule's colour)")
    fig.legend(*axs[0].get_legend_handles_labels(), loc="lower center", ncol=3, bbox_to_anchor=(0.5, -0.1))
    fig.suptitle("Test-set metrics along each schedule", y=1.02)
    fig.tight_layout()
    return fig
