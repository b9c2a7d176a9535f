"""Simulate training spectra (DVC stages ``simulate``, ``simulate-transmission``, ``simulate-paper``).

    python src/generate.py planet=all                          # every planet of the realistic set (mixtures)
    python src/generate.py planet=wasp12b                      # one planet
    python src/generate.py planet=paper experiment=paper       # the paper regime's set
    python src/generate.py planet=gj1214b dataset=tiny cache_dir=<a cache built with opacity=tiny>
"""

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from robert.errors import exit_on_user_error
from robert.simulate.generate import generate_planets


@hydra.main(version_base="1.3", config_path="../conf", config_name="generate")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    planet_key = HydraConfig.get().runtime.choices["planet"]  # the conf/planet/<key>.yaml file chosen
    generate_planets(OmegaConf.to_container(cfg, resolve=True), planet_key, Path(cfg.paths.root))


if __name__ == "__main__":
    main()
