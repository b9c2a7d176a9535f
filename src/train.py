"""Train the DBN on the simulated spectra (DVC stage ``train``); one MLflow run, model registered.

    python src/train.py                                   # planet=all: the nine planets of the realistic set
    python src/train.py model=dbn planet=gj1214b          # one planet
    python src/train.py composition=mixture               # multi-label mixtures
    python src/train.py -m model.hidden=[300,200,50],[500,200,50]
"""

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from robert.config_checks import check_group_choices
from robert.errors import exit_on_user_error


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    from robert.training.train import train  # here: a bad override is reported before the training stack loads

    planet_choice = HydraConfig.get().runtime.choices["planet"]  # all | the conf/planet/<key>.yaml chosen
    result = train(OmegaConf.to_container(cfg, resolve=True), Path(cfg.paths.root), planet_choice)
    if not result.trainer.is_global_zero:  # DDP: the other processes have nothing to report
        return
    print(f"run {result.run_id}: registered version {result.registered_version}, "
          f"validation accuracy {result.val_metrics.get('accuracy', float('nan')):.4f}, "
          f"macro-F1 {result.val_metrics['macro_f1']:.4f}")


if __name__ == "__main__":
    # an unknown group choice (model=xyz) as one line, before Hydra's dozen
    exit_on_user_error(check_group_choices)(Path(__file__).resolve().parents[1] / "conf", sys.argv[1:])
    main()
