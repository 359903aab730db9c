"""gymnasium's toy-text environments as exact tables, and episodes of many policies played at once.

An :class:`Environment` holds a toy-text environment's table ``env.unwrapped.P[s][a] = [(prob, next,
reward, terminated), ...]`` as dense arrays: ``outcome[s, a, s']`` the probability of moving to s',
``reward[s, a, s']`` the reward of that move and ``terminal[s, a, s']`` whether it ends the episode.
From them come the :class:`~analyses.rl_problems.Dynamics` the exact answers use (expected rewards,
transitions into non-terminal states, discount), so a policy's expected return is solved for, never
simulated.

:func:`play` simulates episodes of many policies (one per *lane*: a seed of a learning loop) side by
side, one vectorised step at a time. The discount is played as termination: after every step the
episode goes on with probability gamma (else it ends, as at a terminal state), and returns-to-go are
undiscounted sums of the rewards still to come. Then E[G_t | s_t, a_t] = Q_pi(s_t, a_t) of the
discounted infinite-horizon problem exactly, the objective the exact answers score; a time limit
(gymnasium's wrappers: 100 and 200 steps for FrozenLake, none for CliffWalking) would bias returns
towards what the policy does late in an episode. ``max_steps`` (10,000; the chance that the discount
alone lets an episode run that long is 0.99^10000 = 2e-44) only guards against a runaway loop. The
draws differ from ``env.step``'s (numpy's vectorised categorical draws), not their distribution.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from analyses.environments.rl_problems import GAMMA, Dynamics
from models import weights as weights_lib
from models.errors import InputError

# name -> (gymnasium id, keyword arguments)
ENVIRONMENTS = {
    "frozenlake_4x4": ("FrozenLake-v1", {"map_name": "4x4", "is_slippery": True}),
    "frozenlake_8x8": ("FrozenLake-v1", {"map_name": "8x8", "is_slippery": True}),
    "cliffwalking": ("CliffWalking-v1", {}),
}
MAX_STEPS = 10_000


@dataclass(frozen=True)
class Environment:
    """A toy-text environment's exact table (module docstring) and its discount."""

    name: str
    outcome: np.ndarray = field(repr=False)
    reward: np.ndarray = field(repr=False)
    terminal: np.ndarray = field(repr=False)
    start: np.ndarray = field(repr=False)
    gamma: float = GAMMA

    @property
    def n_states(self) -> int:
        return self.outcome.shape[0]

    @property
    def n_actions(self) -> int:
        return self.outcome.shape[1]

    @cached_property
    def moves(self) -> tuple[np.ndarray, np.ndarray]:
        """``(following, cumulative)``, each (S, A, k): the next states a move can lead to, in order,
        and their cumulative probabilities (padded with the last state and +inf). The sparse form of
        ``outcome`` that :func:`play` draws from: a toy-text move has at most a few next states, and
        the partial sums are those of ``outcome``'s rows (adding the zeros between changes nothing)."""
        reachable = self.outcome > 0
        width = int(reachable.sum(axis=-1).max())
        following = np.zeros((*self.outcome.shape[:2], width), dtype=int)
        cumulative = np.full(following.shape, np.inf)
        for s, a in np.ndindex(*self.outcome.shape[:2]):
            states = np.flatnonzero(reachable[s, a])
            following[s, a] = np.r_[states, np.full(width - states.size, states[-1])]
            cumulative[s, a, :states.size] = np.cumsum(self.outcome[s, a, states])
        return following, cumulative

    @property
    def dynamics(self) -> Dynamics:
        """Expected rewards and the transitions that continue the episode (terminal moves left out)."""
        expected_reward = np.sum(self.outcome * self.reward, axis=-1)
        continuation = np.where(self.terminal, 0.0, self.outcome)
        return Dynamics(self.start, expected_reward, continuation, self.gamma)


def load(name: str) -> Environment:
    """The environment ``name`` (a key of :data:`ENVIRONMENTS`) read from gymnasium's own table."""
    import gymnasium as gym

    if name not in ENVIRONMENTS:
        raise InputError(f"environment must be one of {sorted(ENVIRONMENTS)}, got {name!r}")
    env_id, kwargs = ENVIRONMENTS[name]
    env = gym.make(env_id, **kwargs).unwrapped
    n_states, n_actions = len(env.P), len(env.P[0])
    outcome = np.zeros((n_states, n_actions, n_states))
    reward = np.zeros_like(outcome)
    terminal = np.zeros(outcome.shape, dtype=bool)
    for s, by_action in env.P.items():
        for a, outcomes in by_action.items():
            for probability, following, r, ends in outcomes:
                outcome[s, a, following] += probability
                reward[s, a, following] = r   # the same for every way of reaching s' from (s, a)
                terminal[s, a, following] = ends
    start = np.asarray(env.initial_state_distrib, dtype=float)
    return Environment(name, outcome, reward, terminal, start)


@dataclass(frozen=True)
class Steps:
    """The steps of a batch of episodes, flat and in time order within each (lane, episode): the lane
    and episode they belong to, state, action, reward and discounted return-to-go."""

    lanes: int
    episodes: int
    lane: np.ndarray = field(repr=False)
    episode: np.ndarray = field(repr=False)
    states: np.ndarray = field(repr=False)
    actions: np.ndarray = field(repr=False)
    rewards: np.ndarray = field(repr=False)
    returns: np.ndarray = field(repr=False)


def _categorical(cumulative: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """One draw per row of ``cumulative`` probabilities (..., K), by inversion of its uniform."""
    draws = np.sum(uniforms[..., None] > cumulative, axis=-1)
    return np.minimum(draws, cumulative.shape[-1] - 1)   # rounding of the last cumulative value


def play(environment: Environment, policies: np.ndarray, episodes: int, rng) -> Steps:
    """``episodes`` episodes of each policy in ``policies`` (lanes, S, A), ended by a terminal state or
    by the discount (module docstring), with their undiscounted returns-to-go.

    Every step draws three uniforms for every episode, finished or not (the action, the move, the
    discount), so each episode's draws do not depend on how long the others run; only the episodes
    still running are computed."""
    policies = np.asarray(policies, dtype=float)
    if policies.ndim != 3 or policies.shape[1:] != (environment.n_states, environment.n_actions):
        raise InputError(f"policies must be (lanes, {environment.n_states}, {environment.n_actions}), "
                         f"got {policies.shape}")
    lanes = policies.shape[0]
    shape = (lanes, episodes)
    choose = np.cumsum(policies, axis=-1)
    following_states, move = environment.moves
    starts = np.broadcast_to(np.cumsum(environment.start), (*shape, environment.n_states))
    state = _categorical(starts, rng.random(shape)).ravel()   # per episode, lane-major: lane * episodes + e
    running = np.arange(lanes * episodes)   # the episodes still running
    taken = []   # per time step: (episodes running, state, action, reward)
    for _ in range(MAX_STEPS):
        u_action, u_move, u_go = (rng.random(shape).ravel() for _ in range(3))
        now = state[running]
        chosen = _categorical(choose[running // episodes, now], u_action[running])
        following = following_states[now, chosen, _categorical(move[now, chosen], u_move[running])]
        taken.append((running, now, chosen, environment.reward[now, chosen, following]))
        state[running] = following
        running = running[~environment.terminal[now, chosen, following] & (u_go[running] < environment.gamma)]
        if running.size == 0:
            break
    else:
        raise RuntimeError(f"an episode ran {MAX_STEPS} steps")
    # Returns-to-go, summed backwards in time within each episode.
    to_go, returns = np.zeros(lanes * episodes), []
    for running, _, _, reward in reversed(taken):
        to_go[running] += reward
        returns.append(to_go[running])
    returns.reverse()
    # Flat, episode by episode in time order: (lane, episode, t).
    episode = np.concatenate([running for running, *_ in taken])
    order = np.argsort(episode, kind="stable")
    column = lambda k: np.concatenate([step[k] for step in taken])[order]  # noqa: E731
    return Steps(lanes, episodes, episode[order] // episodes, episode[order] % episodes, column(1), column(2),
                 column(3), np.concatenate(returns)[order])


def episode_ends(steps: Steps) -> np.ndarray:
    """Whether each step is the last of its episode (the layout :mod:`models.weights` takes)."""
    following = np.r_[steps.lane[1:] * steps.episodes + steps.episode[1:], -1]
    return following != steps.lane * steps.episodes + steps.episode


def _lane_states(steps: Steps, n_states: int) -> np.ndarray:
    """Each step's (lane, state) as one code: the lanes' states as the states of one larger problem."""
    return steps.lane * n_states + steps.states


def advantages(steps: Steps, n_states: int) -> np.ndarray:
    """Each step's return minus the mean return of its state over its lane's batch
    (``weights.advantages`` with each lane's states kept apart): within a lane, each state's
    advantages sum to zero."""
    return weights_lib.advantages(steps.returns, _lane_states(steps, n_states),
                                  n_states=steps.lanes * n_states)


def cell_sums(steps: Steps, weights: np.ndarray, n_states: int, n_actions: int) -> np.ndarray:
    """Per lane the net weight W_sa of every (state, action) cell, shape (lanes, S, A). (Not
    ``policy.cell_weights``, which refuses all-zero weights: a batch without a reward has them.)"""
    cell = (steps.lane * n_states + steps.states) * n_actions + steps.actions
    cells = np.bincount(cell, weights=weights, minlength=steps.lanes * n_states * n_actions)   # in step order
    return cells.reshape(steps.lanes, n_states, n_actions)


def advantage_cells(steps: Steps, n_states: int, n_actions: int) -> tuple[np.ndarray, np.ndarray]:
    """``(advantages, cells)``: the steps' advantages (:func:`advantages`) and their cell sums per lane,
    each state's total set to exactly 0.

    In exact arithmetic a state's advantages sum to zero; in floating point, subtracting the mean of
    thousands of returns of size 100 (CliffWalking) leaves about 1e-8. That rounding, checked to be
    below 1e-9 of the state's summed |returns|, is taken off the cells the batch visited, in equal
    parts: a state where one action was taken gets the exact 0 its one cell has in exact arithmetic
    (no signal: nothing to compare that action with), unvisited cells stay 0, and the closed forms for
    zero-total cells (``policy.advantage_map``) apply exactly.
    """
    advantage = advantages(steps, n_states)
    cells = cell_sums(steps, advantage, n_states, n_actions)
    visited = cell_sums(steps, np.ones(steps.states.size), n_states, n_actions) > 0
    totals = cells.sum(axis=-1, keepdims=True)
    magnitude = cell_sums(steps, np.abs(steps.returns), n_states, n_actions).sum(axis=-1, keepdims=True)
    if np.any(np.abs(totals) > 1e-9 * magnitude):
        raise AssertionError("state-baseline advantages do not sum to zero within rounding")
    shares = np.maximum(visited.sum(axis=-1, keepdims=True), 1)
    return advantage, np.where(visited, cells - totals / shares, 0.0)
