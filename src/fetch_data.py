"""Obtain and verify the real input files under data/ (tracked by data.dvc).

    python src/fetch_data.py
"""

from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from robert.errors import exit_on_user_error
from robert.inputs.fetch import fetch_inputs


@hydra.main(version_base="1.3", config_path="../conf", config_name="fetch_data")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    actions = fetch_inputs(OmegaConf.to_container(cfg.inputs, resolve=True), Path(cfg.paths.root))
    for name, action in actions.items():
        print(f"{action:>9}  {cfg.inputs.data_dir}/{name}")


if __name__ == "__main__":
    main()
