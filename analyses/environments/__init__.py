"""The reinforcement-learning problems the policy analyses play: tabular problems with exact
dynamics (:mod:`~analyses.environments.rl_problems`) and gymnasium's toy-text environments
(:mod:`~analyses.environments.toy_text`)."""
