"""Two exactly solvable problems for the policy analysis, and their exact answers.

* A contextual bandit in numpy: 3 equally likely states, 5 actions, reward ~ Normal(mu[s, a], 1),
  a behaviour policy that favours a deliberately second-best guess.
* FrozenLake-v1 4x4, slippery (gymnasium's toy text), discount 0.99, its exact transition table
  ``env.unwrapped.P``, and episodes logged from it with gymnasium's own sampler and draw order.

Exact answers for any policy pi (tabular, or a stack of posterior draws): the expected return
``V_pi(start)`` from solving ``(I - gamma P_pi) V = r_pi``, and the optimum by value iteration. No
Monte Carlo is involved in scoring a fitted policy.

The weighting schemes of the logged steps (``scheme_weights``: behaviour cloning, REINFORCE,
advantages, AWR, importance ratios to the uniform target times advantages) and the yardstick
policies (``reference_policies``) are defined here too, beside the data they weight.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from models import policy
from models import weights as weights_lib

GAMMA = 0.99
# AWR temperature per problem, on the scale of its advantages (reward sd 1; FrozenLake advantages sd 0.2)
TEMPERATURE = {"bandit": 0.5, "frozenlake": 0.1}
BANDIT_MEANS = np.array([
    [1.0, 1.5, 2.0, 0.5, 1.2],   # best action 2; the guess (1) is second best
    [0.8, 0.6, 1.0, 2.2, 1.9],   # best action 3; the guess (4) is second best
    [2.5, 1.0, 1.5, 1.4, 2.3],   # best action 0; the guess (4) is second best
])
BANDIT_GUESS = np.array([1, 4, 4])
BANDIT_GUESS_SHARE = 0.5   # beta = 0.5 on the guess + 0.5 uniform: 0.6 on the guess, 0.1 elsewhere
BANDIT_REWARD_SD = 1.0
BANDIT_STEPS = 300
FROZENLAKE_EPISODES = 3000
FROZENLAKE_EPISODES_QUICK = 500   # --quick: NUTS on thousands of cloned steps is what takes time
FROZENLAKE_UNIFORM_SHARE = 0.5
AWR_MAX_WEIGHT = 20.0
CLIP = 0.2       # PPO-style ratio clipping to [1 - CLIP, 1 + CLIP]
TRUNCATE = 1.0   # V-trace truncation rho_bar


@dataclass(frozen=True)
class Dynamics:
    """What the exact answers need: p(s_0), expected rewards, transitions, discount.

    ``reward[s, a]`` is the expected immediate reward; ``continuation[s, a, s']`` the probability of
    moving on to s' *and the episode going on* (transitions into terminal states are left out, so a
    terminal state's value is 0 and a row may sum to less than one; all zero in the bandit).
    """

    start: np.ndarray
    reward: np.ndarray
    continuation: np.ndarray
    gamma: float

    @property
    def n_states(self) -> int:
        return self.reward.shape[0]

    @property
    def n_actions(self) -> int:
        return self.reward.shape[1]


@dataclass
class Problem:
    """An exactly solvable problem, its behaviour policy and the steps logged with it."""

    name: str
    dynamics: Dynamics
    behavior: np.ndarray
    temperature: float
    states: np.ndarray = field(repr=False)
    actions: np.ndarray = field(repr=False)
    rewards: np.ndarray = field(repr=False)
    episode_ends: np.ndarray = field(repr=False)
    grid: np.ndarray | None = None   # FrozenLake's map letters, for the figures

    @property
    def n_states(self) -> int:
        return self.dynamics.n_states

    @property
    def n_actions(self) -> int:
        return self.dynamics.n_actions

    @property
    def gamma(self) -> float:
        return self.dynamics.gamma


def state_values(dynamics: Dynamics, pi: np.ndarray) -> np.ndarray:
    """V_pi by solving (I - gamma P_pi) V = r_pi exactly; ``pi`` is (..., S, A), batched over leading axes."""
    pi = np.asarray(pi, dtype=float)
    r_pi = np.sum(pi * dynamics.reward, axis=-1)
    p_pi = np.einsum("...sa,sat->...st", pi, dynamics.continuation)
    return np.linalg.solve(np.eye(dynamics.n_states) - dynamics.gamma * p_pi, r_pi[..., None])[..., 0]


def expected_return(dynamics: Dynamics, pi: np.ndarray) -> np.ndarray:
    """The exact expected discounted return ``sum_s p(s_0 = s) V_pi(s)`` of each policy in ``pi``."""
    return state_values(dynamics, pi) @ dynamics.start


def action_values(dynamics: Dynamics, values: np.ndarray) -> np.ndarray:
    """Q(s, a) = r(s, a) + gamma sum_s' P(s' | s, a) V(s')."""
    return dynamics.reward + dynamics.gamma * dynamics.continuation @ values


def value_iteration(dynamics: Dynamics, tolerance: float = 1e-13) -> tuple[np.ndarray, np.ndarray]:
    """Optimal ``(V*, Q*)`` by value iteration to ``tolerance`` (a contraction for gamma < 1)."""
    values = np.zeros(dynamics.n_states)
    for _ in range(100_000):
        q = action_values(dynamics, values)
        updated = q.max(axis=1)
        if np.max(np.abs(updated - values)) < tolerance:
            return updated, action_values(dynamics, updated)
        values = updated
    raise RuntimeError("value iteration did not converge")


def greedy(q: np.ndarray) -> np.ndarray:
    """The deterministic policy taking argmax_a q[s, a] (first action on ties), as (S, A) one-hots."""
    return np.eye(q.shape[1])[np.argmax(q, axis=1)]


def bandit(rng, steps: int = BANDIT_STEPS) -> Problem:
    """The contextual bandit and ``steps`` logged pulls of its behaviour policy."""
    n_states, n_actions = BANDIT_MEANS.shape
    behavior = np.full((n_states, n_actions), (1 - BANDIT_GUESS_SHARE) / n_actions)
    behavior[np.arange(n_states), BANDIT_GUESS] += BANDIT_GUESS_SHARE
    start = np.full(n_states, 1.0 / n_states)
    states = rng.choice(n_states, size=steps, p=start)
    actions = np.array([rng.choice(n_actions, p=behavior[s]) for s in states])
    rewards = rng.normal(BANDIT_MEANS[states, actions], BANDIT_REWARD_SD)
    dynamics = Dynamics(start, BANDIT_MEANS.copy(), np.zeros((n_states, n_actions, n_states)), 0.0)
    return Problem("bandit", dynamics, behavior, TEMPERATURE["bandit"], states, actions, rewards,
                   np.ones(steps, dtype=bool))


class FrozenLakeTable:
    """gymnasium's FrozenLake-v1 (4x4, slippery) as its exact transition table, stepped like ``env.step``.

    :meth:`reset` and :meth:`step` draw exactly as ``FrozenLakeEnv.reset`` / ``.step`` do (one
    ``rng.random()`` each, through gymnasium's ``categorical_sample`` over the same lists), so with
    the same generator they return the same states and rewards.
    """

    def __init__(self):
        import gymnasium as gym  # here: only FrozenLake needs it
        from gymnasium.envs.toy_text.utils import categorical_sample

        env = gym.make("FrozenLake-v1", map_name="4x4", is_slippery=True).unwrapped
        self.transitions = env.P
        self.initial = np.asarray(env.initial_state_distrib, dtype=float)
        self.grid = env.desc.astype(str)
        self._sample = categorical_sample
        n_states, n_actions = len(env.P), len(env.P[0])
        self.reward = np.zeros((n_states, n_actions))
        self.continuation = np.zeros((n_states, n_actions, n_states))
        for s, by_action in env.P.items():
            for a, outcomes in by_action.items():
                for probability, following, reward, terminated in outcomes:
                    self.reward[s, a] += probability * reward
                    if not terminated:
                        self.continuation[s, a, following] += probability

    def reset(self, rng) -> int:
        return int(self._sample(self.initial, rng))

    def step(self, state: int, action: int, rng) -> tuple[int, float, bool]:
        outcomes = self.transitions[state][action]
        _, following, reward, terminated = outcomes[self._sample([o[0] for o in outcomes], rng)]
        return int(following), float(reward), bool(terminated)

    def choose(self, probabilities, rng) -> int:
        """An action drawn from ``probabilities`` with the same rule (one ``rng.random()``)."""
        return int(self._sample(probabilities, rng))


def log_episodes(table: FrozenLakeTable, behavior: np.ndarray, episodes: int, rng,
                 max_steps: int = 10_000) -> dict[str, np.ndarray]:
    """``episodes`` episodes of ``behavior``: per step the state, action, reward and whether it ended
    the episode. Random draws in gymnasium's order: reset, then per step the action and the move."""
    log = {"states": [], "actions": [], "rewards": [], "episode_ends": []}
    for _ in range(episodes):
        state = table.reset(rng)
        for _ in range(max_steps):
            action = table.choose(behavior[state], rng)
            following, reward, terminated = table.step(state, action, rng)
            for key, value in zip(log, (state, action, reward, terminated)):
                log[key].append(value)
            if terminated:
                break
            state = following
        else:
            raise RuntimeError(f"an episode ran {max_steps} steps without ending")
    return {key: np.asarray(value) for key, value in log.items()}


def naive_planner(table: FrozenLakeTable) -> np.ndarray:
    """Shortest-path policy of the map *without* ice (each move succeeds): greedy in the optimal
    Q of the deterministic map, discounted by 0.9 so that shorter paths win."""
    import gymnasium as gym

    env = gym.make("FrozenLake-v1", map_name="4x4", is_slippery=False).unwrapped
    n_states, n_actions = table.reward.shape
    reward, continuation = np.zeros((n_states, n_actions)), np.zeros((n_states, n_actions, n_states))
    for s, by_action in env.P.items():
        for a, ((_, following, r, terminated),) in by_action.items():
            reward[s, a] = r
            continuation[s, a, following] = 0.0 if terminated else 1.0
    return greedy(value_iteration(Dynamics(table.initial, reward, continuation, 0.9))[1])


def frozenlake(rng, episodes: int = FROZENLAKE_EPISODES) -> Problem:
    """FrozenLake's exact table and ``episodes`` logged episodes of its behaviour policy."""
    table = FrozenLakeTable()
    n_actions = table.reward.shape[1]
    behavior = FROZENLAKE_UNIFORM_SHARE / n_actions + (1 - FROZENLAKE_UNIFORM_SHARE) * naive_planner(table)
    log = log_episodes(table, behavior, episodes, rng)
    dynamics = Dynamics(table.initial, table.reward, table.continuation, GAMMA)
    return Problem("frozenlake", dynamics, behavior, TEMPERATURE["frozenlake"], log["states"],
                   log["actions"], log["rewards"], log["episode_ends"], grid=table.grid)


def make_problem(name: str, rng, quick: bool = False) -> Problem:
    if name == "bandit":
        return bandit(rng)
    return frozenlake(rng, FROZENLAKE_EPISODES_QUICK if quick else FROZENLAKE_EPISODES)


# --------------------------------------------------------------------------- weights of the logged steps


def returns(problem: Problem) -> np.ndarray:
    """Discounted return-to-go G_i of every logged step."""
    return weights_lib.returns_to_go(problem.rewards, problem.episode_ends, problem.gamma)


def advantages(problem: Problem) -> np.ndarray:
    """G_i minus the mean return of its state over the log."""
    return weights_lib.advantages(returns(problem), problem.states, n_states=problem.n_states)


def target_policy(problem: Problem) -> np.ndarray:
    """The off-policy target: the uniform policy, the one at the prior mean (all preferences 0)."""
    return np.full((problem.n_states, problem.n_actions), 1.0 / problem.n_actions)


def ratio_inputs(problem: Problem) -> tuple[np.ndarray, np.ndarray]:
    """Target and behaviour probabilities of every logged action."""
    index = (problem.states, problem.actions)
    return target_policy(problem)[index], problem.behavior[index]


def ratios(problem: Problem, *, clip=None, truncate=None) -> np.ndarray:
    """Per-step importance ratios pi_target(a_i | s_i) / beta(a_i | s_i), clipped or truncated."""
    return weights_lib.importance_ratios(*ratio_inputs(problem), clip=clip, truncate=truncate)


OFFPOLICY = {"offpolicy_ordinary": {}, "offpolicy_self_normalised": {},
             "offpolicy_clipped": {"clip": CLIP}, "offpolicy_truncated": {"truncate": TRUNCATE}}


def scheme_weights(problem: Problem, scheme: str) -> tuple[np.ndarray, bool]:
    """``(weights, signed)``: one weight per logged step, and whether they may be negative."""
    if scheme == "behavior_cloning":
        return np.ones(problem.states.size), False
    if scheme == "reinforce":
        g = returns(problem)
        return g, bool(np.any(g < 0))
    advantage = advantages(problem)
    if scheme == "advantage":
        return advantage, True
    if scheme == "awr":
        return weights_lib.awr(advantage, temperature=problem.temperature, max_weight=AWR_MAX_WEIGHT), False
    rho = ratios(problem, **OFFPOLICY[scheme])
    if scheme == "offpolicy_self_normalised":
        rho = weights_lib.self_normalised_ratios(rho, problem.states, n_states=problem.n_states)
    return rho * advantage, True


def reference_policies(problem: Problem) -> dict[str, np.ndarray]:
    """Yardsticks: the optimal policy; the behaviour; one step of policy improvement on the behaviour
    (greedy in its exact Q); and the same step estimated from the log (greedy in each cell's mean
    logged advantage, never-logged actions excluded): what the data could support at best in one step."""
    dynamics = problem.dynamics
    behavior_q = action_values(dynamics, state_values(dynamics, problem.behavior))
    index = {"states": problem.states, "actions": problem.actions, "n_states": problem.n_states,
             "n_actions": problem.n_actions}
    counts = policy.cell_weights(**index)
    mean_advantage = policy.cell_weights(**index, weights=advantages(problem)) / np.maximum(counts, 1)
    return {"optimal": greedy(value_iteration(dynamics)[1]), "behavior": problem.behavior,
            "behavior_greedy": greedy(behavior_q),
            "greedy_logged_advantage": greedy(np.where(counts > 0, mean_advantage, -np.inf))}
