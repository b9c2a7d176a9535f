"""Build the cross-section cache (DVC stage ``opacities``).

    python src/opacities.py                      # the default molecules and grids
    python src/opacities.py opacity=tiny         # a small cache for tests
"""

from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from robert.errors import exit_on_user_error
from robert.opacity.build import build_cache


@hydra.main(version_base="1.3", config_path="../conf", config_name="opacities")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    c = OmegaConf.to_container(cfg, resolve=True)
    build_cache(c["opacity"], c["molecules"], c["inputs"], Path(c["paths"]["root"]))


if __name__ == "__main__":
    main()
