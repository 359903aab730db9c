"""Jittered HMC with Stan's windowed warm-up, written for many lanes in lockstep.

Each lane is one chain of one fit; ``jax.vmap`` runs many lanes as one program. NUTS builds a tree of
a length each lane decides for itself, and NumPyro's adaptation switches on per-lane conditions, which
``vmap`` turns into computing both branches on every lane at every iteration: measured on a 300-row
logistic regression, NumPyro's NUTS and even its static HMC grow slower per fit as lanes are added.
Here nothing branches on a lane's own state except the leapfrog loop's length:

* **Transition.** Momentum ``r ~ N(0, M)`` with a diagonal mass matrix M, ``L`` leapfrog steps of
  size ``eps``, then Metropolis acceptance on the Hamiltonian ``U(z) + r' M^-1 r / 2``
  (``U = -log density``, Jacobians included). ``L = ceil(u T / eps)``, ``u ~ U(0, 2)`` drawn afresh at
  every iteration (jitter: a static trajectory of fixed length can resonate with a Gaussian
  direction's period), at most ``max_steps``. A fixed or random ``L`` independent of the state keeps
  the target invariant, whatever ``T``.
* **Warm-up** (Stan's schedule, as NumPyro's ``build_adaptation_schedule``: a fast initial buffer
  of 75 iterations, slow windows of 25, 50, 100, ... doubling, a fast terminal buffer of 50, shrunk
  proportionally for short warm-ups): the step size by dual averaging (Hoffman & Gelman 2014,
  gamma 0.05, t0 10, kappa 0.75) towards ``target_accept`` throughout; in each slow window the
  draws' variances (Welford), regularised as Stan does, become M^-1 at the window's end, where the
  dual averaging restarts from ``log(10 eps)``. The windows are the same for every lane, so their
  ends switch with ``lax.cond`` on a schedule, not on a lane's state.
* **Trajectory length** ``T``: pi/2 times the square root of the largest eigenvalue of the draws'
  correlation matrix in the last slow window (the quarter period of the widest direction of a
  Gaussian target once M has made the marginal variances 1), pi/2 until the first window ends.
  Draws keep the step size ``eps`` (the dual average) and ``T`` of the end of warm-up.

Divergence: a Hamiltonian error above 1000 or not finite (then the move is rejected), as NumPyro and
Stan report it. The statistics kept per draw mirror NUTS's: ``n_steps`` (L), ``step_size``,
``acceptance_rate`` (the Metropolis probability), ``energy`` (the Hamiltonian of the state kept),
``diverging``.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["adaptation_schedule", "run_lane"]

DIVERGENCE = 1000.0
GAMMA, T0, KAPPA = 0.05, 10.0, 0.75


def adaptation_schedule(tune: int) -> tuple[np.ndarray, np.ndarray]:
    """Per warm-up iteration: whether it is in a slow window, and whether a slow window ends there.

    Stan's schedule: 75 fast, slow windows from 25 doubling (the last one stretched to the terminal
    buffer), 50 fast; for fewer than 150 iterations, 15% / 75% / 10% as Stan shrinks it; none below 20.

    Parameters
    ----------
    tune : int
        Warm-up iterations.

    Returns
    -------
    in_window, window_end : numpy.ndarray of bool, shape (tune,)

    Examples
    --------
    >>> from models.sampling.hmc import adaptation_schedule
    >>> in_window, window_end = adaptation_schedule(500)
    >>> int(in_window.sum()), [int(i) for i in window_end.nonzero()[0]]
    (375, [99, 149, 249, 449])
    """
    in_window, window_end = np.zeros(tune, dtype=bool), np.zeros(tune, dtype=bool)
    if tune < 20:
        return in_window, window_end
    initial, terminal, base = 75, 50, 25
    if tune < initial + terminal + base:
        initial, terminal = int(0.15 * tune), int(0.1 * tune)
        base = tune - initial - terminal
    start, size, last = initial, base, tune - terminal
    while start < last:
        end = start + size
        if end + 2 * size > last:   # the next window would not fit: this one runs to the buffer
            end = last
        in_window[start:end] = True
        window_end[end - 1] = True
        start, size = end, 2 * size
    return in_window, window_end


def _leapfrogs(jax, potential_and_grad, z, r, grad, eps, inverse_mass, steps):
    """``steps`` leapfrog steps (a lane's own count)."""
    jnp = jax.numpy

    def body(carry):
        i, z, r, grad, potential = carry
        r = r - 0.5 * eps * grad
        z = z + eps * inverse_mass * r
        potential, grad = potential_and_grad(z)
        r = r - 0.5 * eps * grad
        return i + 1, z, r, grad, potential

    carry = (jnp.zeros((), dtype=jnp.int32), z, r, grad, jnp.zeros((), dtype=z.dtype))
    _, z, r, grad, potential = jax.lax.while_loop(lambda c: c[0] < steps, body, carry)
    return z, r, grad, potential


def run_lane(jax, log_density, z0, key, *, tune: int, draws: int, target_accept: float, max_steps: int):
    """One chain: ``tune`` warm-up and ``draws`` kept iterations of jittered HMC (module docstring).

    Parameters
    ----------
    jax : module
    log_density : callable
        ``z -> log density`` (JAX, of the flat unconstrained vector).
    z0 : array, shape (d,)
        The start.
    key : array
        The lane's PRNG key.
    tune, draws : int
    target_accept : float
    max_steps : int
        The longest trajectory, in leapfrog steps.

    Returns
    -------
    z : array, shape (draws, d)
    stats : tuple of arrays, each (draws,)
        ``diverging, energy, n_steps, step_size, acceptance_rate``.
    """
    jnp = jax.numpy
    dtype = z0.dtype
    potential_and_grad = jax.value_and_grad(lambda z: -log_density(z))
    d = z0.shape[0]
    in_window, window_end = adaptation_schedule(tune)
    iterations = tune + draws
    # Every random number of the chain drawn at once (threefry in one vectorised call is far cheaper
    # than a key split per iteration): momenta, trajectory jitters, acceptance uniforms.
    momentum_key, uniform_key = jax.random.split(key)
    schedule = (jnp.asarray(np.r_[in_window, np.zeros(draws, bool)]),
                jnp.asarray(np.r_[window_end, np.zeros(draws, bool)]),
                jnp.asarray(np.r_[np.ones(tune, bool), np.zeros(draws, bool)]),
                jax.random.normal(momentum_key, (iterations, d), dtype),
                jax.random.uniform(uniform_key, (iterations, 2), dtype))
    potential0, grad0 = potential_and_grad(z0)
    half_pi = jnp.asarray(math.pi / 2, dtype=dtype)
    initial_eps = jnp.asarray(0.1, dtype=dtype)
    state = {
        "z": z0, "potential": potential0, "grad": grad0,
        "inverse_mass": jnp.ones(d, dtype=dtype), "length": half_pi,
        "log_eps": jnp.log(initial_eps), "log_eps_bar": jnp.log(initial_eps), "h_bar": jnp.zeros((), dtype),
        "mu": jnp.log(10 * initial_eps), "t": jnp.zeros((), dtype),
        "count": jnp.zeros((), dtype), "mean": jnp.zeros(d, dtype), "scatter": jnp.zeros((d, d), dtype),
    }

    def transition(state, scheduled):
        in_slow, ends, warming, normal, uniform = scheduled
        eps = jnp.where(warming, jnp.exp(state["log_eps"]), jnp.exp(state["log_eps_bar"]))
        inverse_mass = state["inverse_mass"]
        r0 = normal / jnp.sqrt(inverse_mass)
        steps = jnp.clip(jnp.ceil(2 * uniform[0] * state["length"] / eps), 1, max_steps).astype(jnp.int32)
        z, r, grad, potential = _leapfrogs(jax, potential_and_grad, state["z"], r0, state["grad"], eps,
                                           inverse_mass, steps)
        h0 = state["potential"] + 0.5 * jnp.sum(inverse_mass * r0**2)
        h1 = potential + 0.5 * jnp.sum(inverse_mass * r**2)
        error = jnp.where(jnp.isfinite(h1), h1 - h0, jnp.inf)
        diverging = error > DIVERGENCE
        accept_prob = jnp.where(diverging, 0.0, jnp.exp(jnp.minimum(0.0, -error)))
        accepted = uniform[1] < accept_prob
        new = {**state,
               "z": jnp.where(accepted, z, state["z"]),
               "potential": jnp.where(accepted, potential, state["potential"]),
               "grad": jnp.where(accepted, grad, state["grad"])}
        energy = jnp.where(accepted, h1, h0)
        # dual averaging of log eps during warm-up (frozen afterwards)
        t = state["t"] + 1
        h_bar = (1 - 1 / (t + T0)) * state["h_bar"] + (target_accept - accept_prob) / (t + T0)
        log_eps = state["mu"] - jnp.sqrt(t) / GAMMA * h_bar
        weight = t ** (-KAPPA)
        log_eps_bar = weight * log_eps + (1 - weight) * state["log_eps_bar"]
        for name, value in (("t", t), ("h_bar", h_bar), ("log_eps", log_eps), ("log_eps_bar", log_eps_bar)):
            new[name] = jnp.where(warming, value, state[name])
        # Welford over the slow window's draws (mean and scatter matrix)
        count = state["count"] + 1
        delta = new["z"] - state["mean"]
        mean = state["mean"] + delta / count
        scatter = state["scatter"] + jnp.outer(delta, new["z"] - mean)
        new["count"] = jnp.where(in_slow, count, state["count"])
        new["mean"] = jnp.where(in_slow, mean, state["mean"])
        new["scatter"] = jnp.where(in_slow, scatter, state["scatter"])
        new = jax.lax.cond(ends, _window_end, lambda s: s, new)
        return new, (new["z"], diverging, energy, steps, eps, accept_prob)

    def _window_end(state):
        n = state["count"]
        covariance = state["scatter"] / jnp.maximum(n - 1, 1)
        variance = (n / (n + 5)) * jnp.diag(covariance) + 1e-3 * (5 / (n + 5))
        correlation = covariance / jnp.sqrt(jnp.outer(jnp.diag(covariance), jnp.diag(covariance)))
        largest = jnp.max(jnp.linalg.eigvalsh(jnp.where(jnp.isfinite(correlation), correlation, jnp.eye(d))))
        eps = jnp.exp(state["log_eps"])
        return {**state, "inverse_mass": variance, "length": half_pi * jnp.sqrt(jnp.maximum(largest, 1.0)),
                "mu": jnp.log(10 * eps), "t": jnp.zeros_like(state["t"]),
                "h_bar": jnp.zeros_like(state["h_bar"]),
                "log_eps_bar": jnp.zeros_like(state["log_eps_bar"]), "count": jnp.zeros_like(n),
                "mean": jnp.zeros_like(state["mean"]), "scatter": jnp.zeros_like(state["scatter"])}

    _, (z, *stats) = jax.lax.scan(transition, state, schedule)
    return z[tune:], tuple(s[tune:] for s in stats)
