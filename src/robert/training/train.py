"""One training run: DataModule + the model's Lightning module + Trainer, tracked in MLflow, model registered.

Flow: validate the model and label configs (fail fast) -> seed_everything -> load the shards -> fit with an
unmonitored :class:`~robert.model.callbacks.EpochCheckpoint` under ``<train.checkpoint_dir>/<config hash>/``
and :class:`~robert.model.callbacks.FinetuneEarlyStopping` -> log the resolved config, the dataset (an MLflow
dataset input per split, the DVC hash as digest), the validation confusion matrix and the pyfunc model ->
register it -> write ``train.output``.

Runs are named by what tells them apart (:func:`run_name`: geometry, labels, model, observation, planets) and
tagged with the same facts, so the MLflow UI's compare view groups them; each regime/geometry logs to its own
experiment (``tracking.experiment``, set by ``conf/experiment/*.yaml``).

Resume: a killed run leaves ``last.ckpt`` and the MLflow run id in its checkpoint directory; the same config run
again continues from that checkpoint in the same MLflow run. A run that finished removes its checkpoint
directory, so running the same config again trains afresh.
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
import pandas as pd
import torch
import yaml
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import MLFlowLogger
from lightning.pytorch.utilities import rank_zero_only
from mlflow.tracking import MlflowClient
from mlflow.tracking.context.registry import resolve_tags

import robert
from robert.config_checks import check_positive_int
from robert.data.datamodule import SpectraDataModule
from robert.data.dataset import resolve_planets
from robert.model.callbacks import EpochCheckpoint, FinetuneEarlyStopping, StartEpoch
from robert.model.config import validate_model_config
from robert.model.dbn import DeepBeliefNetwork
from robert.model.module import RecogniserModule, module_for
from robert.spectra.detection import LabelSettings
from robert.tracking.setup import configure_tracking
from robert.training.metrics import classification_metrics, confusion_matrix, write_confusion

RUN_ID_FILE = "mlflow_run_id"
# Config sections that do not change what is trained (a resumed run may switch them).
NOT_HASHED = ("tracking", "hydra", "evaluate", "summary")


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


def checkpoint_dir_of(cfg: Mapping, root: Path) -> Path:
    """Where a training of ``cfg`` keeps its checkpoints and MLflow run id (what a killed run resumes from)."""
    return root / cfg["train"]["checkpoint_dir"] / config_hash(cfg)


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


def run_facts(cfg: Mapping, planets: Sequence[str]) -> dict[str, str]:
    """What tells this training apart from others: the run's tags (and its name, :func:`run_name`)."""
    model = cfg["model"]
    kind = model.get("kind", "dbn")
    widths = model.get("hidden") or model.get("filters") or []
    return {"geometry": cfg.get("simulate", {}).get("geometry", "emission"),
            "regime": str(cfg.get("regime", "realistic")),
            "labels": LabelSettings.from_config(cfg["labels"]).describe(),
            "model": f"{kind}-{'-'.join(map(str, widths))}",
            "inputs": "+".join(model.get("inputs", ["depth"])),
            "observation": str(cfg["observation"].get("name", "custom")),
            "composition": cfg["composition"]["kind"],
            "planets": ",".join(planets)}


def run_name(facts: Mapping[str, str], planets: Sequence[str]) -> str:
    """e.g. ``emission/realistic/detection/dbn-500-200-50/any-coverage/mixture/7-planets``."""
    where = planets[0] if len(planets) == 1 else f"{len(planets)}-planets"
    labels = facts["labels"].split(" ")[0]
    return "/".join([facts["geometry"], facts["regime"], labels, facts["model"], facts["observation"],
                     facts["composition"], where])


def registered_name(cfg: Mapping) -> str:
    """The registry name of this training's model: ``tracking.registered_model`` for a DBN, with ``-<kind>`` for a
    peer (``robert-mlp``), so a peer never takes the recogniser's ``@champion``."""
    kind = cfg["model"].get("kind", "dbn")
    base = cfg["tracking"]["registered_model"]
    return base if kind == "dbn" else f"{base}-{kind}"


def early_stopping(section: Mapping) -> list[FinetuneEarlyStopping]:
    """``train.early_stopping`` as callbacks: none when its patience is null (the schedule runs to its end)."""
    patience = section.get("patience")
    if patience is None:
        return []
    return [FinetuneEarlyStopping(monitor=section["monitor"], mode=section["mode"],
                                  patience=check_positive_int(patience, "train.early_stopping.patience"))]


def build_datamodule(cfg: Mapping, planets: Sequence[str], root: Path) -> SpectraDataModule:
    return SpectraDataModule(cfg, planets, root, batch_size=int(cfg["model"]["batch_size"]), seed=int(cfg["seed"]))


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
    facts = run_facts(cfg, planets)
    # MLflow's own context tags (source script, git commit, user), as its fluent start_run would set them
    run_id = client.create_run(experiment.experiment_id, run_name=run_name(facts, planets),
                               tags=resolve_tags({"stage": "train", **facts})).info.run_id
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    id_file.write_text(run_id)
    return run_id


def train(cfg: Mapping, root: Path, planet_choice: str | None = None,
          callbacks: Sequence[Callback] = ()) -> TrainResult:
    """Train, log and register one model from a resolved ``conf/train.yaml`` (plain containers)."""
    validate_model_config(cfg["model"])  # a bad width is a one-line error before any data is read
    LabelSettings.from_config(cfg["labels"])
    stopping = early_stopping(cfg["train"]["early_stopping"])
    planets = resolve_planets(cfg, planet_choice)
    root = Path(root)
    with torch_threads(cfg["trainer"].get("torch_threads")):
        pl.seed_everything(int(cfg["seed"]), workers=True, verbose=False)
        datamodule = build_datamodule(cfg, planets, root)
        datamodule.setup("fit")
        module = module_for(datamodule.n_grid, len(datamodule.molecules), cfg["model"], int(cfg["seed"]),
                            datamodule.molecules)
        sample = datamodule.scaling_sample()
        if module.config["standardise_inputs"]:
            module.network.fit_input_scaling(module.network.encode(sample.observation))
        module.network.set_output_prior(sample.targets.float().mean(0))

        checkpoint_dir = checkpoint_dir_of(cfg, root)
        last = checkpoint_dir / "last.ckpt"
        resume = last.exists()
        configure_tracking(cfg["tracking"], root)
        tracking_uri = mlflow.get_tracking_uri()
        # DDP: the launcher re-runs this script once per extra process (rank > 0, known from the
        # environment before the Trainer exists); only rank 0 owns an MLflow run.
        run_id = _mlflow_run(cfg, checkpoint_dir, resume, planets) if rank_zero_only.rank == 0 else None
        logger = MLFlowLogger(experiment_name=cfg["tracking"]["experiment"], tracking_uri=tracking_uri,
                              run_id=run_id, log_model=False)
        logger.log_hyperparams({k: str(v) for k, v in flatten(cfg).items()} | {"planets": ",".join(planets)})

        start = StartEpoch()
        trainer_cfg = cfg["trainer"]
        trainer = pl.Trainer(
            max_epochs=trainer_cfg.get("max_epochs") or module.total_epochs,
            accelerator=trainer_cfg["accelerator"], devices=trainer_cfg["devices"],
            strategy=trainer_cfg["strategy"], precision=trainer_cfg["precision"], logger=logger,
            # unmonitored: written every epoch, so last.ckpt always exists to resume from
            callbacks=[EpochCheckpoint(dirpath=checkpoint_dir, save_last=True), *stopping, start, *callbacks],
            enable_progress_bar=bool(trainer_cfg["progress_bar"]), enable_model_summary=False,
            num_sanity_val_steps=int(trainer_cfg["num_sanity_val_steps"]),
            log_every_n_steps=int(trainer_cfg["log_every_n_steps"]), profiler=trainer_cfg.get("profiler"),
            default_root_dir=checkpoint_dir)
        with warnings.catch_warnings():
            # This directory holds our own run-id file before the first checkpoint (and last.ckpt, which we
            # resume from, after a kill): Lightning's "not empty" warning is expected here, not a hazard.
            ours = re.escape(os.path.realpath(checkpoint_dir))  # the form Lightning prints
            warnings.filterwarnings("ignore", message=f"Checkpoint directory {ours} exists and is not empty")
            trainer.fit(module, datamodule=datamodule, ckpt_path=last if resume else None)

        result = TrainResult(run_id, tracking_uri, f"runs:/{run_id}/model", None, {}, resume, start.start_epoch,
                             trainer)
        if trainer.is_global_zero:
            result = _log_results(cfg, root, module, datamodule, planets, result)
            shutil.rmtree(checkpoint_dir, ignore_errors=True)
    return result


def dataset_digest(datamodule: SpectraDataModule, root: Path) -> str:
    """The DVC hash of the dataset directory (from dvc.lock, when ``dvc repro`` made it), else the shards' own
    config hashes: what the MLflow dataset input is keyed by."""
    directory = os.path.relpath(datamodule.directory / datamodule.composition, root)
    lock = root / "dvc.lock"
    if lock.exists():
        # libyaml's loader where PyYAML has it: the pure-Python one takes ~2 s over the pipeline's lock file
        lock_data = yaml.load(lock.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        for stage in (lock_data or {}).get("stages", {}).values():
            for out in stage.get("outs", []):
                if out["path"] == directory and out.get("md5"):
                    return str(out["md5"]).removesuffix(".dir")[:16]
    hashes = [",".join(datamodule.split("train").provenance.get(p, {}).get("config_hash", []))
              for p in datamodule.planets]
    return hashlib.sha256("|".join(hashes).encode()).hexdigest()[:16]


def log_dataset(datamodule: SpectraDataModule, root: Path) -> None:
    """Each split as an MLflow dataset input: one row per spectrum (planet, injected gases), digest = DVC hash.

    Each split is its own named dataset: MLflow keeps one input per (name, digest) and run, so three splits under
    one name would leave only the training split (and its row count) in the run."""
    digest = dataset_digest(datamodule, root)
    # the directory already holds the root (dataset_dir); a file URI needs it absolute
    source = (datamodule.directory / datamodule.composition).resolve()
    for split, context in (("train", "training"), ("val", "validation"), ("test", "testing")):
        spectra = datamodule.split(split)
        table = pd.concat([pd.DataFrame({"planet": spectra.planet}), pd.DataFrame(
            spectra.injected > 0.5, columns=[f"injected_{m}" for m in spectra.molecules])], axis=1)
        with warnings.catch_warnings():  # MLflow registers its local-file source under two schemes: not ambiguous
            warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
            dataset = mlflow.data.from_pandas(table, source=source.as_uri(), digest=digest,
                                              name=f"{datamodule.directory.name}/{datamodule.composition}/{split}")
        mlflow.log_input(dataset, context=context)


def _log_results(cfg: Mapping, root: Path, module: RecogniserModule, datamodule: SpectraDataModule,
                 planets: Sequence[str], result: TrainResult) -> TrainResult:
    """Artifacts, the pyfunc model and its registration, in the training's MLflow run."""
    # Imported here: defining the PythonModel subclass makes MLflow print a warning, which would
    # otherwise precede every one-line configuration error of the entry script.
    from robert.inference.package import package_for_inference
    from robert.model.serialization import network_spec, save_network
    from robert.tracking.pyfunc import RobertModel
    from robert.tracking.requirements import pinned_requirements

    molecules = datamodule.molecules
    network = module.network.cpu().eval()
    val = datamodule.observed_set("val")
    probs = network.observed_proba(val.observation).numpy()
    val_metrics = classification_metrics(probs, val.targets.numpy(), molecules, val.weights.numpy())
    provenance = {"planets": planets, "composition": cfg["composition"]["kind"],
                  "dataset_dir": str(datamodule.directory), "molecules": molecules,
                  "n_spectra": {split: len(datamodule.split(split)) for split in ("train", "val", "test")},
                  "shards": datamodule.split("train").provenance}
    generative_trained = isinstance(network, DeepBeliefNetwork) and module.config["top"]["epochs"] > 0 and min(
        module.config["pretrain"]["epochs_per_layer"]) > 0
    spec = network_spec(network, molecules, generative_trained=generative_trained,
                        geometry=cfg.get("simulate", {}).get("geometry", "emission"),
                        labels=dict(cfg["labels"]))
    with mlflow.start_run(run_id=result.run_id), tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        mlflow.log_text(yaml.safe_dump(dict(cfg), sort_keys=False), "config.yaml")
        mlflow.log_dict(provenance, "dataset_provenance.json")
        log_dataset(datamodule, root)
        mlflow.log_metrics({f"val_final/{k}": v for k, v in val_metrics.items() if isinstance(v, float)})
        for path in write_confusion(confusion_matrix(probs, val.targets.numpy()), molecules, tmp_dir / "confusion",
                                    "validation, training prior"):
            mlflow.log_artifact(str(path), "validation")
        # what inference needs beside the weights: the constraint references and the matching settings
        package = package_for_inference(network, datamodule, cfg, tmp_dir / "inference")
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
            registered_model_name=registered_name(cfg) if register else None,
            pip_requirements=requirements)
    version = None if info.registered_model_version is None else str(info.registered_model_version)
    output = root / cfg["train"]["output"]
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({"run_id": result.run_id, "model_uri": info.model_uri,
                                  "registered_model": registered_name(cfg) if register else None,
                                  "version": version, "planets": list(planets),
                                  "composition": cfg["composition"]["kind"], "molecules": molecules}, indent=2))
    result.registered_version, result.model_uri, result.val_metrics = version, info.model_uri, val_metrics
    return result
