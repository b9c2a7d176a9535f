"""Plot one example emission spectrum per molecule (docs/examples.png, shown in the README).

    python src/plot_examples.py [planet=hd209458b] [+log10_vmr=-4] [+out=docs/examples.png]
"""

from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from robert.errors import exit_on_user_error
from robert.plots.examples import example_spectra


@hydra.main(version_base="1.3", config_path="../conf", config_name="generate")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    c = OmegaConf.to_container(cfg, resolve=True)
    out = example_spectra(c, Path(c["paths"]["root"]), float(c.get("log10_vmr", -4.0)),
                          Path(c.get("out", "docs/examples.png")))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
