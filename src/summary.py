"""Print what the pipeline built: stages run, registered champions, headline metrics, reports (end of `make run`).

    python src/summary.py [--log build/run.log]
"""

import argparse
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from robert.errors import exit_on_user_error
from robert.tracking.summary import summary_lines

ROOT = Path(__file__).resolve().parents[1]


@exit_on_user_error
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", type=Path, help="the output of `dvc repro` (to say which stages ran)")
    args = parser.parse_args()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        tracking = OmegaConf.to_container(compose(config_name="train").tracking, resolve=True)
    log = args.log.read_text() if args.log and args.log.exists() else None
    print("\n".join(summary_lines(ROOT, tracking, log)))


if __name__ == "__main__":
    main()
