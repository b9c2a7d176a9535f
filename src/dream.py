"""Dream every molecule with a registered model (DVC stage ``dream``): figure, HTML report, dreams.json, MLflow run.

    python src/dream.py                                      # models:/robert@champion
    python src/dream.py dream.model_uri=models:/robert/3     # another version
    python src/dream.py dream.readme_figure=docs/dreams.png  # also refresh the README figure
"""

import json
import os
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from robert.errors import exit_on_user_error

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one line of output, not progress bars


@hydra.main(version_base="1.3", config_path="../conf", config_name="dream")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    from robert.dream.stage import dream_report  # after Hydra: a bad override fails before torch/MLflow load

    payload = dream_report(OmegaConf.to_container(cfg, resolve=True), Path(cfg.paths.root))
    print(json.dumps({"model": payload["model"], **{m: {k: payload[m][k] for k in ("pearson_r", "rms",
                      "best_matching_class")} for m in payload if m not in ("model", "summary")},
                      "summary": payload["summary"]}))


if __name__ == "__main__":
    main()
