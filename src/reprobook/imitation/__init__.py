"""Continual imitation learning with task-specific adapters (TAIL) on Meta-World.

- :mod:`~reprobook.imitation.tasks`: environments, scripted experts, seeded episodes;
- :mod:`~reprobook.imitation.demos`: success-filtered demonstrations in the book's cache;
- :mod:`~reprobook.imitation.windows`: training windows and the train/validation split;
- :mod:`~reprobook.imitation.policy`: the behaviour-cloning policy (GPT-2 decoder, FiLM, Gaussian head);
- :mod:`~reprobook.imitation.adapters`: LoRA and prefix tuning (``peft``) and bottleneck adapters;
- :mod:`~reprobook.imitation.training`: behaviour cloning with AdamW, a linear or constant schedule;
- :mod:`~reprobook.imitation.continual`: pretraining, TAIL and the baselines over a suite sequence;
- :mod:`~reprobook.imitation.evaluate`: episode outcomes on reported and selection seeds, FWT and BWT,
  parameter counts;
- :mod:`~reprobook.imitation.experiment`: a suite sequence from task lists, a comparison of methods,
  bootstrap intervals over the evaluation episodes, the validation-loss rise.
"""
