"""Evaluate the last trained model on the fixed test set (DVC stage ``evaluate``); move @champion if better.

    python src/evaluate.py                               # the version train.output names, planet=all
    python src/evaluate.py evaluate.model_version=3      # a given registered version
    python src/evaluate.py evaluate.leave_one_planet_out=true
"""

import json
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from robert.errors import exit_on_user_error
from robert.training.evaluate import evaluate


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    planet_choice = HydraConfig.get().runtime.choices["planet"]
    summary = evaluate(OmegaConf.to_container(cfg, resolve=True), Path(cfg.paths.root), planet_choice)
    print(json.dumps({k: summary[k] for k in ("model", "version", "test_accuracy", "macro_f1", "f1", "champion")}))


if __name__ == "__main__":
    main()
