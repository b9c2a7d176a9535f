"""Lightning training of the DBN: greedy CD pre-training, top RBM, fine-tuning, in one ``trainer.fit``.

Why hand-written: Lightning has no RBM/DBN module (see :mod:`robert.model.rbm`). Why one module with
a phase schedule rather than one fit per phase: the phase is a pure function of the epoch, which
Lightning checkpoints and restores, so ``trainer.fit(ckpt_path=...)`` resumes in the right
layer/phase with no extra bookkeeping, and one MLflow run holds all the curves.

Epoch schedule (``DBNModule.total_epochs`` epochs; give the Trainer ``max_epochs=module.total_epochs``):
``rbm1`` x epochs_per_layer[0], ..., ``top_rbm`` x top.epochs, ``finetune`` x finetune.epochs.

Batches: ``(x, y)`` (tuple/list, extra items ignored) or a mapping with keys ``x``/``y`` or
``spectrum``/``labels``. ``x``: (batch, n_visible) floats in [0, 1]; ``y``: (batch, n_labels) in {0, 1}
(multi-hot; one-hot for single-gas data). Labels are used by the top RBM and fine-tuning.

Optimisation is manual throughout (``automatic_optimization = False``): CD updates are not
gradients (they run in float32 with autocast off), and fine-tuning steps the optimiser from
``configure_optimizers`` (AdamW or SGD + momentum over the classifier only) via ``manual_backward``,
so Lightning's precision plugins still apply. ``Trainer(gradient_clip_val=...)`` is not supported
with manual optimisation. Under DDP the CD statistics are all-reduced so every process makes the
same update.

Logged per epoch: ``<phase>/train_recon_error``, ``<phase>/val_recon_error``,
``<phase>/free_energy_gap`` (pre-training phases), ``train/loss`` (fine-tuning), and in every
epoch ``val/loss`` (BCE of the classifier as it stands: before fine-tuning it is the untrained
net), ``val/accuracy`` (argmax correct, over rows with exactly one label), ``val/macro_f1``
(threshold 0.5), ``val/exact_match``, ``phase`` (index into ``PHASE_KINDS``). Early stopping
on ``val/loss`` must ignore the pre-training epochs: use :class:`FinetuneEarlyStopping`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor, nn

from robert.errors import UserError, choice_error
from robert.model.dbn import DeepBeliefNetwork, validate_hidden_widths
from robert.model.rbm import RBM, VISIBLE_TYPES

OPTIMIZERS = ("adamw", "sgd")
PHASE_KINDS = ("rbm", "top_rbm", "finetune")
# CD settings the top RBM takes from ``pretrain`` unless ``top`` overrides them.
CD_KEYS = ("lr", "cd_k", "persistent", "momentum", "weight_decay")
FREE_ENERGY_REFERENCE_ROWS = 256  # training rows kept per epoch to compare free energies against


# --- configuration ----------------------------------------------------------------------------------


def _check_number(section: Mapping | Sequence, key: str | int, field: str, *, integer: bool = False,
                  minimum: float = 0.0, strictly_above: bool = False, below: float | None = None) -> None:
    """Raise a UserError naming ``field`` unless section[key] is a number in the allowed range."""
    if isinstance(section, Mapping) and key not in section:
        raise UserError(f"{field} is missing")
    value = section[key]
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise UserError(f"{field} must be {'an integer' if integer else 'a number'}; got {value!r}")
    too_low = value <= minimum if strictly_above else value < minimum
    if too_low or (below is not None and value >= below):
        bounds = f"{'>' if strictly_above else '>='} {minimum}"
        bounds += f" and < {below}" if below is not None else ""
        raise UserError(f"{field} must be {bounds}; got {value!r}")


def _check_cd_section(section: Mapping, prefix: str) -> None:
    _check_number(section, "lr", f"{prefix}.lr", strictly_above=True)
    _check_number(section, "cd_k", f"{prefix}.cd_k", integer=True, minimum=1)
    _check_number(section, "momentum", f"{prefix}.momentum", below=1.0)
    _check_number(section, "weight_decay", f"{prefix}.weight_decay")
    if not isinstance(section.get("persistent"), bool):
        raise UserError(f"{prefix}.persistent must be true or false; got {section.get('persistent')!r}")


def _section(model: Mapping, name: str) -> Mapping:
    section = model.get(name)
    if not isinstance(section, Mapping):
        raise UserError(f"model.{name} must be a mapping of settings; got {section!r}")
    return section


def validate_model_config(model: Mapping) -> dict[str, Any]:
    """Check a ``conf/model/*.yaml`` mapping; return it normalised (plain types).

    Normalised: ``pretrain.epochs_per_layer`` becomes one int per stacked RBM; ``top`` gets the
    CD settings it does not override from ``pretrain``. Errors are UserErrors naming the field.
    """
    hidden = validate_hidden_widths(model.get("hidden"), "model.hidden")
    visible = model.get("visible")
    if visible not in VISIBLE_TYPES:
        raise choice_error("model.visible", visible, VISIBLE_TYPES)
    _check_number(model, "batch_size", "model.batch_size", integer=True, minimum=1)
    pretrain, top, finetune = (dict(_section(model, name)) for name in ("pretrain", "top", "finetune"))

    _check_cd_section(pretrain, "model.pretrain")
    _check_number(pretrain, "n_persistent_chains", "model.pretrain.n_persistent_chains",
                  integer=True, minimum=1)
    n_stacked = len(hidden) - 1
    epochs = pretrain.get("epochs_per_layer")
    epochs_list = [epochs] * n_stacked if isinstance(epochs, int) and not isinstance(epochs, bool) else epochs
    if not isinstance(epochs_list, Sequence) or isinstance(epochs_list, str) or len(epochs_list) != n_stacked:
        raise UserError(f"model.pretrain.epochs_per_layer must be an integer or a list of {n_stacked} "
                        f"integers (one per stacked RBM below the top RBM); got {epochs!r}")
    for position in range(n_stacked):
        _check_number(epochs_list, position, f"model.pretrain.epochs_per_layer[{position}]", integer=True)
    pretrain["epochs_per_layer"] = list(epochs_list)

    top = {**{key: pretrain[key] for key in CD_KEYS}, **top}
    _check_number(top, "epochs", "model.top.epochs", integer=True)
    _check_cd_section(top, "model.top")

    _check_number(finetune, "epochs", "model.finetune.epochs", integer=True)
    _check_number(finetune, "lr", "model.finetune.lr", strictly_above=True)
    _check_number(finetune, "weight_decay", "model.finetune.weight_decay")
    if finetune.get("optimizer") not in OPTIMIZERS:
        raise choice_error("model.finetune.optimizer", finetune.get("optimizer"), OPTIMIZERS)
    if finetune["optimizer"] == "sgd":
        _check_number(finetune, "momentum", "model.finetune.momentum", below=1.0)
    return {**dict(model), "hidden": hidden, "pretrain": pretrain, "top": top, "finetune": finetune}


def phase_schedule(model: Mapping) -> list[str]:
    """Phase name of each epoch: ``rbm1``..``rbmN``, ``top_rbm``, ``finetune`` (validated config)."""
    schedule = [f"rbm{depth + 1}" for depth, n in enumerate(model["pretrain"]["epochs_per_layer"])
                for _ in range(n)]
    return schedule + ["top_rbm"] * model["top"]["epochs"] + ["finetune"] * model["finetune"]["epochs"]


def phase_kind(phase: str) -> str:
    return "rbm" if phase.startswith("rbm") else phase


def unpack_batch(batch: Any) -> tuple[Tensor, Tensor]:
    """(x, y) from a tuple/list batch or a mapping with x/y or spectrum/labels keys."""
    if isinstance(batch, Mapping):
        for x_key, y_key in (("x", "y"), ("spectrum", "labels")):
            if x_key in batch and y_key in batch:
                return batch[x_key], batch[y_key]
        raise KeyError(f"batch mapping needs keys x/y or spectrum/labels; got {sorted(batch)}")
    x, y = batch[0], batch[1]
    return x, y


class FinetuneEarlyStopping(EarlyStopping):
    """EarlyStopping that only counts fine-tuning epochs (pre-training epochs neither improve nor wait)."""

    @staticmethod
    def _pretraining(pl_module: pl.LightningModule) -> bool:
        return isinstance(pl_module, DBNModule) and pl_module.current_phase != "finetune"

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._pretraining(pl_module):
            super().on_validation_end(trainer, pl_module)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._pretraining(pl_module):
            super().on_train_epoch_end(trainer, pl_module)


# --- the module -------------------------------------------------------------------------------------


class DBNModule(pl.LightningModule):
    """Pre-trains (CD), builds the top RBM and fine-tunes a :class:`DeepBeliefNetwork` by epoch schedule.

    ``model`` is a ``conf/model/*.yaml`` mapping (plain containers); ``seed`` fixes the initial
    weights and every CD / dream draw; ``label_names`` (molecules) is stored with the hyper-parameters.
    """

    def __init__(self, n_visible: int, n_labels: int, model: dict[str, Any], seed: int = 0,
                 label_names: list[str] | None = None) -> None:
        super().__init__()
        if label_names is not None and len(label_names) != n_labels:
            raise UserError(f"{len(label_names)} label names for {n_labels} labels")
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.config = validate_model_config(model)
        self.schedule = phase_schedule(self.config)
        self.dbn = DeepBeliefNetwork(n_visible, n_labels, self.config["hidden"], self.config["visible"],
                                     self.config["pretrain"]["n_persistent_chains"], seed)
        self.seed = seed
        self.generator: torch.Generator | None = None
        self._restored_generator: tuple[str, Tensor] | None = None
        self._train_reference: tuple[Tensor, Tensor] | None = None
        self._val_totals: dict[str, Tensor] = {}

    # --- schedule -------------------------------------------------------------------------------

    @property
    def total_epochs(self) -> int:
        return len(self.schedule)

    @property
    def n_pretrain_epochs(self) -> int:
        return sum(phase != "finetune" for phase in self.schedule)

    def phase_at(self, epoch: int) -> str:
        """The phase of ``epoch``; epochs past the schedule keep fine-tuning."""
        return self.schedule[epoch] if epoch < len(self.schedule) else "finetune"

    @property
    def current_phase(self) -> str:
        return self.phase_at(self.current_epoch)

    def rbm_of(self, phase: str) -> RBM:
        return self.dbn.top_rbm if phase == "top_rbm" else self.dbn.rbms[int(phase[3:]) - 1]

    def cd_settings(self, phase: str) -> dict[str, Any]:
        """Keyword arguments of :meth:`RBM.contrastive_divergence_step` for ``phase`` (config's cd_k is k)."""
        section = self.config["top"] if phase == "top_rbm" else self.config["pretrain"]
        return {"k" if key == "cd_k" else key: section[key] for key in CD_KEYS}

    def rbm_input(self, phase: str, x: Tensor, y: Tensor) -> Tensor:
        """The data the RBM of ``phase`` models: activations of the layer below (+ labels for the top)."""
        if phase == "top_rbm":
            return self.dbn.top_rbm_input(x, y)
        return self.dbn.up_pass(x, int(phase[3:]) - 1)

    # --- Lightning hooks ------------------------------------------------------------------------

    def forward(self, x: Tensor) -> Tensor:
        return self.dbn(x)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        finetune = self.config["finetune"]
        parameters = self.dbn.classifier.parameters()
        if finetune["optimizer"] == "sgd":
            return torch.optim.SGD(parameters, lr=finetune["lr"], momentum=finetune["momentum"],
                                   weight_decay=finetune["weight_decay"])
        return torch.optim.AdamW(parameters, lr=finetune["lr"], weight_decay=finetune["weight_decay"])

    def on_fit_start(self) -> None:
        if self.trainer.max_epochs is not None and 0 <= self.trainer.max_epochs < self.total_epochs:
            rank_zero_warn(f"Trainer(max_epochs={self.trainer.max_epochs}) stops before the DBN schedule "
                           f"ends ({self.total_epochs} epochs: {self.n_pretrain_epochs} pre-training)")
        # Each process draws its own chains; the seed makes every run (and every rank) reproducible.
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(self.seed + self.global_rank)
        if self._restored_generator is not None:
            device_type, state = self._restored_generator
            if device_type == self.device.type:
                self.generator.set_state(state)
            else:
                rank_zero_warn(f"checkpoint's random state is for {device_type}, not {self.device.type}: "
                               "the resumed run is reseeded and will not repeat an uninterrupted one exactly")
                self.generator.manual_seed(self.seed + self.global_rank + 7919 * (self.global_step + 1))
            self._restored_generator = None

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.generator is not None:
            checkpoint["robert_generator"] = {"device_type": self.device.type,
                                              "state": self.generator.get_state()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get("robert_generator")
        if saved is not None:
            self._restored_generator = (saved["device_type"], saved["state"])

    def on_train_epoch_start(self) -> None:
        self._train_reference = None
        # Fine-tuning starts from the pre-trained stack (unless there was no pre-training at all:
        # then the classifier keeps its Glorot initialisation). The flag is in state_dict, so a
        # resumed run does not copy again.
        if (self.current_phase == "finetune" and self.n_pretrain_epochs > 0
                and not bool(self.dbn.classifier_initialised)):
            self.dbn.initialise_classifier_from_stack()
        self.log("phase", float(self.phase_index(self.current_phase)), on_step=False, on_epoch=True)

    @staticmethod
    def phase_index(phase: str) -> int:
        return PHASE_KINDS.index(phase_kind(phase))

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = unpack_batch(batch)
        x, y = x.to(self.dtype), y.to(self.dtype)
        phase = self.current_phase
        if self._train_reference is None:
            rows = slice(0, FREE_ENERGY_REFERENCE_ROWS)
            self._train_reference = (x[rows].detach(), y[rows].detach())
        if phase == "finetune":
            optimizer = self.optimizers()
            loss = nn.functional.binary_cross_entropy_with_logits(self(x), y)
            optimizer.zero_grad()
            self.manual_backward(loss)
            optimizer.step()
            self.log("train/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(x),
                     sync_dist=True)
            return loss.detach()
        reduce = None
        if self.trainer.world_size > 1:
            def reduce(tensor: Tensor) -> Tensor:
                return self.trainer.strategy.reduce(tensor, reduce_op="mean")
        # CD statistics in float32 whatever the Trainer's precision: sums of small differences.
        with torch.autocast(device_type=self.device.type, enabled=False):
            error = self.rbm_of(phase).contrastive_divergence_step(
                self.rbm_input(phase, x, y), generator=self.generator, reduce_statistics=reduce,
                **self.cd_settings(phase))
        self.log(f"{phase}/train_recon_error", error, on_step=False, on_epoch=True, prog_bar=True,
                 batch_size=len(x), sync_dist=True)
        return error

    # --- validation -----------------------------------------------------------------------------

    def on_validation_epoch_start(self) -> None:
        zeros = torch.zeros(self.dbn.n_labels, device=self.device, dtype=torch.float64)
        self._val_totals = {"rows": torch.zeros((), device=self.device, dtype=torch.float64),
                            "bce": zeros.new_zeros(()), "exact": zeros.new_zeros(()),
                            "single_rows": zeros.new_zeros(()), "single_correct": zeros.new_zeros(()),
                            "true_positive": zeros.clone(), "false_positive": zeros.clone(),
                            "false_negative": zeros.clone(), "recon_sq": zeros.new_zeros(()),
                            "recon_values": zeros.new_zeros(()), "free_energy": zeros.new_zeros(())}

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = unpack_batch(batch)
        x, y = x.to(self.dtype), y.to(self.dtype)
        totals = self._val_totals
        logits = self(x)
        predicted = logits > 0
        truth = y > 0.5
        totals["rows"] += len(x)
        totals["bce"] += nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="sum").double() \
            / self.dbn.n_labels
        totals["exact"] += (predicted == truth).all(dim=1).sum()
        single = truth.sum(dim=1) == 1
        totals["single_rows"] += single.sum()
        totals["single_correct"] += (logits.argmax(dim=1) == truth.float().argmax(dim=1))[single].sum()
        totals["true_positive"] += (predicted & truth).sum(dim=0)
        totals["false_positive"] += (predicted & ~truth).sum(dim=0)
        totals["false_negative"] += (~predicted & truth).sum(dim=0)
        phase = self.current_phase
        if phase != "finetune":
            rbm, data = self.rbm_of(phase), self.rbm_input(phase, x, y).float()
            with torch.autocast(device_type=self.device.type, enabled=False):
                reconstruction = rbm.visible_mean(rbm.hidden_probs(data))
                totals["recon_sq"] += ((reconstruction - data) ** 2).sum().double()
                totals["recon_values"] += data.numel()
                totals["free_energy"] += rbm.free_energy(data).sum().double()

    def on_validation_epoch_end(self) -> None:
        reduce = self.trainer.strategy.reduce
        totals = {key: reduce(value, reduce_op="sum") for key, value in self._val_totals.items()}
        rows = totals["rows"].clamp(min=1)
        metrics = {"val/loss": totals["bce"] / rows, "val/exact_match": totals["exact"] / rows}
        if totals["single_rows"] > 0:
            metrics["val/accuracy"] = totals["single_correct"] / totals["single_rows"]
        f1 = 2 * totals["true_positive"] / (2 * totals["true_positive"] + totals["false_positive"]
                                            + totals["false_negative"]).clamp(min=1)
        metrics["val/macro_f1"] = f1.mean()
        phase = self.current_phase
        if phase != "finetune" and totals["recon_values"] > 0:
            metrics[f"{phase}/val_recon_error"] = totals["recon_sq"] / totals["recon_values"]
            if self._train_reference is not None:
                rbm = self.rbm_of(phase)
                reference = self.rbm_input(phase, *self._train_reference).float()
                train_free_energy = reduce(rbm.free_energy(reference).mean(), reduce_op="mean")
                metrics[f"{phase}/free_energy_gap"] = totals["free_energy"] / rows - train_free_energy
        for name, value in metrics.items():
            self.log(name, value.float(), on_step=False, on_epoch=True, prog_bar=name == "val/loss")

    def predict_step(self, batch: Any, batch_idx: int) -> Tensor:
        # Prediction batches may carry no labels: a bare tensor, (x,) or (x, y, ...).
        if isinstance(batch, Tensor):
            x = batch
        elif isinstance(batch, Sequence) and len(batch) == 1:
            x = batch[0]
        else:
            x = unpack_batch(batch)[0]
        return torch.sigmoid(self(x.to(self.dtype)))

    # --- dreams ---------------------------------------------------------------------------------

    def dream(self, label_index: int, n_chains: int, n_gibbs_steps: int,
              generator: torch.Generator) -> tuple[Tensor, list[Tensor]]:
        """See :meth:`DeepBeliefNetwork.dream`."""
        return self.dbn.dream(label_index, n_chains, n_gibbs_steps, generator)


__all__ = ["DBNModule", "FinetuneEarlyStopping", "validate_model_config", "phase_schedule", "unpack_batch"]
