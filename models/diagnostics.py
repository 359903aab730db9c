"""Convergence diagnostics of NUTS draws: the numbers one checks before trusting them.

:func:`diagnose` reduces an ``InferenceData`` to its worst r-hat, bulk and tail ESS and BFMI, and its
divergences (a :class:`Diagnostics` record; ``ok`` when every check passes the thresholds below).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import arviz as az
import numpy as np

from models.errors import InputError

R_HAT_MAX = 1.01
ESS_MIN = 400.0
BFMI_MIN = 0.3


@dataclass(frozen=True)
class Diagnostics:
    """Convergence summary of one set of draws; ``ok`` when every check passes."""

    max_r_hat: float
    min_ess_bulk: float
    min_ess_tail: float
    divergences: int
    min_bfmi: float
    chains: int
    draws: int
    nonfinite_draws: int = 0

    @property
    def problems(self) -> list[str]:
        """One sentence per failed check (empty when ``ok``)."""
        found = []
        if self.nonfinite_draws:
            found.append(f"{self.nonfinite_draws} non-finite draw(s)")
        if self.chains < 2:
            found.append("r_hat needs at least 2 chains")
        elif not self.max_r_hat <= R_HAT_MAX:
            found.append(f"r_hat {self.max_r_hat:.3f} > {R_HAT_MAX}")
        if not self.min_ess_bulk >= ESS_MIN:
            found.append(f"bulk ESS {self.min_ess_bulk:.0f} < {ESS_MIN:.0f}")
        if not self.min_ess_tail >= ESS_MIN:
            found.append(f"tail ESS {self.min_ess_tail:.0f} < {ESS_MIN:.0f}")
        if self.divergences:
            found.append(f"{self.divergences} divergent transition(s)")
        if not self.min_bfmi >= BFMI_MIN:
            found.append(f"BFMI {self.min_bfmi:.2f} < {BFMI_MIN}")
        return found

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def diagnose(idata: az.InferenceData) -> Diagnostics:
    """Worst-case r_hat, bulk/tail ESS and BFMI over all posterior variables, and divergences.

    Elements that are constant across draws (e.g. a fixed reference category) are skipped: their
    r_hat and ESS are undefined, not bad. Anything else that is undefined counts as a failure: a
    non-finite r_hat or ESS of a varying element, and draws that are NaN or infinite.
    """
    if not isinstance(idata, az.InferenceData) or "posterior" not in idata.groups():
        raise InputError(f"idata must be an InferenceData with a posterior group, got {type(idata).__name__}")
    posterior = idata.posterior
    nonfinite = sum(int((~np.isfinite(posterior[name].values)).sum()) for name in posterior.data_vars)
    varying = {name: (posterior[name].std(dim=("chain", "draw"), skipna=False) > 0).values
               for name in posterior.data_vars}

    def worst(dataset, reduce):
        values = np.concatenate([np.ravel(dataset[name].values[mask]) for name, mask in varying.items()])
        return float(reduce(values)) if values.size else float("nan")  # NaN propagates: a failure

    chains = posterior.sizes["chain"]
    with np.errstate(invalid="ignore", divide="ignore"):  # constant elements: 0 / 0, masked out
        r_hat = worst(az.rhat(posterior), np.max) if chains > 1 else float("nan")
        ess_bulk = worst(az.ess(posterior, method="bulk"), np.min)
        ess_tail = worst(az.ess(posterior, method="tail"), np.min)
    stats = idata.get("sample_stats")
    divergences = int(stats["diverging"].sum()) if stats is not None and "diverging" in stats else 0
    has_energy = stats is not None and "energy" in stats
    return Diagnostics(
        max_r_hat=r_hat,
        min_ess_bulk=ess_bulk,
        min_ess_tail=ess_tail,
        divergences=divergences,
        min_bfmi=float(np.min(az.bfmi(idata))) if has_energy else float("nan"),
        chains=int(chains),
        draws=int(posterior.sizes["draw"]),
        nonfinite_draws=nonfinite,
    )
