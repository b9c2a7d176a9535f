"""Plot one example emission spectrum per molecule (docs/examples.png, shown in the README).

    python src/plot_examples.py [planet=hd209458b] [+log10_vmr=-4] [+out=docs/examples.png]
    python src/plot_examples.py planet=hd209458b '+pair=[TiO,VO]' +out=docs/tio_vo.png   # a confused pair
"""

from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from robert.errors import exit_on_user_error
from robert.plots.examples import confused_pair, example_spectra


@hydra.main(version_base="1.3", config_path="../conf", config_name="generate")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    c = OmegaConf.to_container(cfg, resolve=True)
    root = Path(c["paths"]["root"])
    if c.get("pair"):
        out = confused_pair(c, root, list(c["pair"]), [-6.0, -4.0, -2.0], Path(c.get("out", "docs/pair.png")))
    else:
        out = example_spectra(c, root, float(c.get("log10_vmr", -4.0)), Path(c.get("out", "docs/examples.png")))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
