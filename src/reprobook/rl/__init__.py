"""Value learning with target networks: Lookahead-Replicate and its special cases.

- :mod:`~reprobook.rl.chains`: exact policy evaluation on small Markov chains with linear values,
  LR, the hard copy and the soft (Polyak) target, and Baird's divergent star.
"""
