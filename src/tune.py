"""Tune the DBN's hyper-parameters with Optuna (opt-in DVC stage ``tune``); each trial is one training run.

    python src/tune.py                                    # 30 more trials of study robert-dbn (sqlite under mlruns/)
    python src/tune.py tune.n_trials=10 planet=gj1214b    # the same command again continues the same study
    python src/tune.py tune.storage=postgresql://robert@db-host/optuna tune.worker=1   # another worker
    python src/tune.py tune=tiny model=dbn_tiny data=tiny # a smoke run
"""

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from robert.errors import exit_on_user_error
from robert.tuning.run import run_study


@hydra.main(version_base="1.3", config_path="../conf", config_name="tune")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    planet_choice = HydraConfig.get().runtime.choices["planet"]  # all | the conf/planet/<key>.yaml chosen
    summary = run_study(OmegaConf.to_container(cfg, resolve=True), Path(cfg.paths.root), planet_choice)
    counts = ", ".join(f"{n} {state.lower()}" for state, n in summary.counts.items() if n)
    print(f"study {summary.study_name} ({summary.storage}): {summary.trials_run} trials run now, "
          f"{counts or 'no trials'} in all; MLflow parent run {summary.parent_run_id}")
    if summary.best_trial is None:
        print("no trial has completed yet: no best config written")
    else:
        print(f"best: trial {summary.best_trial}, validation {cfg.tune.metric} {summary.best_value:.4f}, "
              f"{summary.best_params}; written to {summary.best_config}")


if __name__ == "__main__":
    main()
