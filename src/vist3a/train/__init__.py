"""Training infrastructure shared by every trainer: distributed set-up, checkpoints, EMA, logging."""

#: World-seed offset of the held-out scenes of every mini stage: training seed ``s``, held-out ``s + 7919``
#: (disjoint scene sets; :attr:`vist3a.train.mini_loop.MiniTrainConfig.eval_seed`).
HELD_OUT_OFFSET = 7919
#: The held-out world seed of the shipped mini model, which is trained on world seed 0.
HELD_OUT_SEED = 0 + HELD_OUT_OFFSET
