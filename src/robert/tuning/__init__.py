"""Hyper-parameter tuning of a recogniser with Optuna 5 (``python src/tune.py``; config ``conf/tune.yaml``).

Pieces: :mod:`.space` (the search space of ``conf/tune/space/*.yaml``, checked against the training
config), :mod:`.study` (storage, sampler, pruner, create-or-continue), :mod:`.objective` (one trial =
one :func:`robert.training.train.train` run, pruned through optuna-integration's Lightning callback),
:mod:`.mlflow_runs` (the study's parent run and the nested trial runs), :mod:`.best_config` (the best
trial as a ``conf/model/`` file, ``tune.best_config``), :mod:`.run` (the whole study). The objective is a
validation metric of the training (``val/macro_f1`` by default).

Why a script and not Hydra's Optuna sweeper: ``hydra-optuna-sweeper`` 1.3 requires optuna < 3 (DESIGN.md
section 8); a sweeper also could not share one study between workers on several machines.
"""
