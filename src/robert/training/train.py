"""One training run: DataModule + DBNModule + Lightning Trainer, tracked in MLflow, model registered.

Flow: validate the model config (fail fast) -> seed_everything -> load the shards -> fit with an
unmonitored ``ModelCheckpoint(save_last=True)`` under ``<train.checkpoint_dir>/<config hash>/`` and
:class:`FinetuneEarlyStopping` -> log the resolved config, dataset provenance, the validation
confusion matrix and the pyfunc model to the run -> register it -> write ``train.output``.

Resume: a killed run leaves ``last.ckpt`` and the MLflow run id in its checkpoint directory; the
same config run again continues from that checkpoint in the same MLflow run. A run that finished
removes its checkpoint directory, so running the same config again trains afresh.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import mlflow
import torch
import yaml
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import MLFlowLogger
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_only
from mlflow.tracking import MlflowClient

import robert
from robert.data.datamodule import SpectraDataModule, resolve_planets
from robert.model.lightning_module import DBNModule, FinetuneEarlyStopping, validate_model_config
from robert.tracking.setup import configure_tracking
from robert.training.metrics import classification_metrics, confusion_matrix, write_confusion

RUN_ID_FILE = "mlflow_run_id"
# Config sections that do not change what is trained (a resumed run may switch them).
NOT_HASHED = ("tracking", "hydra", "evaluate")


@dataclass
class TrainResult:
    run_id: str
    tracking_uri: str
    model_uri: str                 # runs:/<id>/model
    registered_version: str | None
    val_metrics: dict[str, Any]
    resumed: bool
    start_epoch: int
    trainer: pl.Trainer


def flatten(tree: Mapping, prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}; lists stay values (MLflow params are strings)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def config_hash(cfg: Mapping) -> str:
    content = {k: v for k, v in cfg.items() if k not in NOT_HASHED}
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:16]


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` intra-op threads (None: leave torch's choice), restoring the previous count."""
    previous = torch.get_num_threads()
    if n:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class EpochCheckpoint(ModelCheckpoint):
    """A ModelCheckpoint that saves at every epoch's end, even an epoch with no optimiser step.

    Why: CD pre-training updates the weights without an optimiser, so ``trainer.global_step`` stays
    0 through the pre-training epochs, and Lightning's ModelCheckpoint (which skips when the global
    step has not moved) writes nothing before fine-tuning: a run killed in pre-training would
    restart from scratch. Here "already saved" means "saved in this epoch at this step".
    """

    _last_saved_at: tuple[int, int] | None = None

    def _should_skip_saving_checkpoint(self, trainer: pl.Trainer) -> bool:
        return (bool(trainer.fast_dev_run) or trainer.state.fn != TrainerFn.FITTING or trainer.sanity_checking
                or self._last_saved_at == (trainer.current_epoch, trainer.global_step))

    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        super()._save_checkpoint(trainer, filepath)
        self._last_saved_at = (trainer.current_epoch, trainer.global_step)


class _StartEpoch(Callback):
    """Records the epoch fit starts at (0 for a fresh run, >0 after resuming)."""

    start_epoch = 0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.start_epoch = trainer.current_epoch


def build_datamodule(cfg: Mapping, planets: Sequence[str], root: Path) -> SpectraDataModule:
    return SpectraDataModule(cfg["data"], cfg["composition"]["kind"], planets, root,
                             batch_size=int(cfg["model"]["batch_size"]), seed=int(cfg["seed"]))


def _mlflow_run(cfg: Mapping, checkpoint_dir: Path, resume: bool, planets: Sequence[str]) -> str:
    """The MLflow run of this training: the interrupted one when resuming, else a new one."""
    id_file = checkpoint_dir / RUN_ID_FILE
    client = MlflowClient()
    if resume and id_file.exists():
        run_id = id_file.read_text().strip()
        with contextlib.suppress(mlflow.exceptions.MlflowException):
            client.get_run(run_id)
            return run_id
    experiment = client.get_experiment_by_name(cfg["tracking"]["experiment"])
    name = f"dbn-{'-'.join(map(str, cfg['model']['hidden']))}-{cfg['composition']['kind']}-" \
           f"{'all' if len(planets) > 1 else planets[0]}"
    run_id = client.create_run(experiment.experiment_id, run_name=name,
                               tags={"stage": "train", "planets": ",".join(planets)}).info.run_id
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    id_file.write_text(run_id)
    return run_id


def train(cfg: Mapping, root: Path, planet_choice: str | None = None,
          callbacks: Sequence[Callback] = ()) -> TrainResult:
    """Train, log and register one model from a resolved ``conf/train.yaml`` (plain containers)."""
    validate_model_config(cfg["model"])  # a bad width is a one-line error before any data is read
    planets = resolve_planets(cfg, planet_choice)
    root = Path(root)
    with torch_threads(cfg["trainer"].get("torch_threads")):
        pl.seed_everything(int(cfg["seed"]), workers=True, verbose=False)
        datamodule = build_datamodule(cfg, planets, root)
        datamodule.setup("fit")
        module = DBNModule(datamodule.n_visible, len(datamodule.molecules), cfg["model"], seed=int(cfg["seed"]),
                           label_names=datamodule.molecules)
        module.dbn.fit_input_scaling(datamodule.scaling_sample())

        checkpoint_dir = root / cfg["train"]["checkpoint_dir"] / config_hash(cfg)
        last = checkpoint_dir / "last.ckpt"
        resume = last.exists()
        configure_tracking(cfg["tracking"], root)
        tracking_uri = mlflow.get_tracking_uri()
        resume_from = last if resume else None
        # DDP: the launcher re-runs this script once per extra process (rank > 0, known from the
        # environment before the Trainer exists); only rank 0 owns an MLflow run.
        run_id = _mlflow_run(cfg, checkpoint_dir, resume, planets) if rank_zero_only.rank == 0 else None
        logger = MLFlowLogger(experiment_name=cfg["tracking"]["experiment"], tracking_uri=tracking_uri,
                              run_id=run_id, log_model=False)
        logger.log_hyperparams({k: str(v) for k, v in flatten(cfg).items()} | {"planets": ",".join(planets)})

        start = _StartEpoch()
        stopping = cfg["train"]["early_stopping"]
        trainer_cfg = cfg["trainer"]
        trainer = pl.Trainer(
            max_epochs=trainer_cfg.get("max_epochs") or module.total_epochs,
            accelerator=trainer_cfg["accelerator"], devices=trainer_cfg["devices"],
            strategy=trainer_cfg["strategy"], precision=trainer_cfg["precision"], logger=logger,
            # unmonitored: written every epoch, so last.ckpt always exists to resume from
            callbacks=[EpochCheckpoint(dirpath=checkpoint_dir, save_last=True),
                       FinetuneEarlyStopping(monitor=stopping["monitor"], mode=stopping["mode"],
                                             patience=int(stopping["patience"])),
                       start, *callbacks],
            enable_progress_bar=bool(trainer_cfg["progress_bar"]), enable_model_summary=False,
            num_sanity_val_steps=int(trainer_cfg["num_sanity_val_steps"]),
            log_every_n_steps=int(trainer_cfg["log_every_n_steps"]), default_root_dir=checkpoint_dir)
        with warnings.catch_warnings():
            # This directory holds our own run-id file before the first checkpoint (and last.ckpt, which we
            # resume from, after a kill): Lightning's "not empty" warning is expected here, not a hazard.
            ours = re.escape(os.path.realpath(checkpoint_dir))  # the form Lightning prints
            warnings.filterwarnings("ignore", message=f"Checkpoint directory {ours} exists and is not empty")
            trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from)

        result = TrainResult(run_id, tracking_uri, f"runs:/{run_id}/model", None, {}, resume, start.start_epoch,
                             trainer)
        if trainer.is_global_zero:
            result = _log_results(cfg, root, module, datamodule, planets, result)
            shutil.rmtree(checkpoint_dir, ignore_errors=True)
    return result


def _log_results(cfg: Mapping, root: Path, module: DBNModule, datamodule: SpectraDataModule,
                 planets: Sequence[str], result: TrainResult) -> TrainResult:
    """Artifacts, the pyfunc model and its registration, in the training's MLflow run."""
    # Imported here: defining the PythonModel subclass makes MLflow print a warning, which would
    # otherwise precede every one-line configuration error of the entry script.
    from robert.inference.package import package_for_inference
    from robert.tracking.pyfunc import RobertModel, network_spec, save_network
    from robert.tracking.requirements import pinned_requirements

    molecules = datamodule.molecules
    network = module.dbn.cpu().eval()
    val_x, val_y = datamodule.noisy_set("val")
    probs = network.predict_proba(val_x).numpy()
    val_metrics = classification_metrics(probs, val_y.numpy(), molecules)
    provenance = {"planets": planets, "composition": cfg["composition"]["kind"],
                  "dataset_dir": str(datamodule.dataset_dir), "molecules": molecules,
                  "n_spectra": {split: len(datamodule.split(split)) for split in ("train", "val", "test")},
                  "shards": datamodule.split("train").provenance}
    spec = network_spec(datamodule.n_visible, molecules, module.config, int(cfg["seed"]))
    with mlflow.start_run(run_id=result.run_id), tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        mlflow.log_text(yaml.safe_dump(dict(cfg), sort_keys=False), "config.yaml")
        mlflow.log_dict(provenance, "dataset_provenance.json")
        mlflow.log_metrics({f"val_final/{k}": v for k, v in val_metrics.items() if isinstance(v, float)})
        for path in write_confusion(confusion_matrix(probs, val_y.numpy()), molecules, tmp_dir / "confusion",
                                    f"validation, SNR {cfg['data']['snr']}"):
            mlflow.log_artifact(str(path), "validation")
        # coverage + calibration (validation set) for observed spectra; signature and example in that format
        package = package_for_inference(network, datamodule, cfg, tmp_dir / "inference")
        mlflow.log_metrics(package.metrics)
        register = cfg["train"].get("register", True)
        # an explicit list (train.pip_requirements), else the installed versions of train.model_requirements;
        # neither: MLflow infers them (~10 s, and lists this package, which no index serves)
        requirements = cfg["train"].get("pip_requirements") or pinned_requirements(
            cfg["train"].get("model_requirements") or [], "train.model_requirements") or None
        info = mlflow.pyfunc.log_model(
            name="model", python_model=RobertModel(),
            artifacts=save_network(network, spec, tmp_dir / "network") | package.artifacts,
            code_paths=[str(Path(robert.__file__).parent)], input_example=package.input_example,
            signature=package.signature,
            registered_model_name=cfg["tracking"]["registered_model"] if register else None,
            pip_requirements=requirements)
    version = None if info.registered_model_version is None else str(info.registered_model_version)
    output = root / cfg["train"]["output"]
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({"run_id": result.run_id, "model_uri": info.model_uri,
                                  "registered_model": cfg["tracking"]["registered_model"] if register else None,
                                  "version": version, "planets": list(planets),
                                  "composition": cfg["composition"]["kind"], "molecules": molecules}, indent=2))
    result.registered_version, result.model_uri, result.val_metrics = version, info.model_uri, val_metrics
    return result
