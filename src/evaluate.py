"""Evaluate the last trained model on the fixed test set (DVC stage ``evaluate``); move @champion if better.

    python src/evaluate.py                               # the version train.output names, planet=all
    python src/evaluate.py evaluate.model_version=3      # a given registered version
    python src/evaluate.py evaluate.leave_one_planet_out=true
"""

import json
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from robert.config_checks import check_group_choices
from robert.errors import exit_on_user_error


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    from robert.training.evaluate import evaluate  # here: a bad override is reported before the training stack loads

    planet_choice = HydraConfig.get().runtime.choices["planet"]
    summary = evaluate(OmegaConf.to_container(cfg, resolve=True), Path(cfg.paths.root), planet_choice)
    # accuracy: single-gas test rows only
    print(json.dumps({k: summary.get(k) for k in ("model", "version", "accuracy", "macro_f1", "f1", "champion")}))


if __name__ == "__main__":
    # an unknown group choice (model=xyz) as one line, before Hydra's dozen
    exit_on_user_error(check_group_choices)(Path(__file__).resolve().parents[1] / "conf", sys.argv[1:])
    main()
