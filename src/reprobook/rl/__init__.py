"""Value learning with target networks: Lookahead-Replicate and its special cases.

- :mod:`~reprobook.rl.chains`: exact policy evaluation on small Markov chains with linear values,
  LR, the hard copy and the soft (Polyak) target, and Baird's divergent star;
- :mod:`~reprobook.rl.games`: MinAtar's five games through gymnasium, seeded;
- :mod:`~reprobook.rl.replay`: a uniform replay buffer in NumPy arrays;
- :mod:`~reprobook.rl.dqn`: DQN with the hard, Polyak and Lookahead-Replicate targets, resumable;
- :mod:`~reprobook.rl.experiment`: many runs in worker processes of one thread each;
- :mod:`~reprobook.rl.stats`: the interquartile mean and its bootstrap interval across seeds.
"""
