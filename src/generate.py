"""Simulate one planet's training spectra (DVC stage ``simulate@<planet>``).

    python src/generate.py planet=gj1214b                       # paper parity: single gas
    python src/generate.py planet=wasp12b composition=mixture   # multi-label mixtures
    python src/generate.py planet=gj1214b dataset=tiny cache_dir=<a cache built with opacity=tiny>
"""

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from robert.errors import exit_on_user_error
from robert.simulate.generate import generate_planet


@hydra.main(version_base="1.3", config_path="../conf", config_name="generate")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    planet_key = HydraConfig.get().runtime.choices["planet"]  # the conf/planet/<key>.yaml file chosen
    generate_planet(OmegaConf.to_container(cfg, resolve=True), planet_key, Path(cfg.paths.root))


if __name__ == "__main__":
    main()
