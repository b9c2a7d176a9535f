"""Lightning training of the DBN: greedy CD pre-training, top RBM, fine-tuning, generative fine-tuning.

All in one ``trainer.fit``.

Why hand-written: Lightning has no RBM/DBN module (see :mod:`robert.model.rbm`). Why one module with
a phase schedule rather than one fit per phase: the phase is a pure function of the epoch, which
Lightning checkpoints and restores, so ``trainer.fit(ckpt_path=...)`` resumes in the right
layer/phase with no extra bookkeeping, and one MLflow run holds all the curves.

Epoch schedule (``DBNModule.total_epochs`` epochs; give the Trainer ``max_epochs=module.total_epochs``):
``rbm1`` x epochs_per_layer[0], ..., ``top_rbm`` x top.epochs, ``finetune`` x finetune.epochs,
``generative`` x generative.epochs. The last phase is our variant of the up-down algorithm (Hinton,
Osindero & Teh 2006; :mod:`robert.model.dbn`): with the fine-tuned classifier frozen as the recognition
model, each batch retrains the top RBM by CD on (the classifier's penultimate states, labels) and the
stack's downward weights by the wake-phase delta rule, so the dream runs a generative path that keeps
the class information. ``generative.epochs: 0`` (or no ``generative`` section) skips it. When
:class:`FinetuneEarlyStopping` ends fine-tuning early, the generative epochs follow at once (the epoch
it stopped at is a buffer in the checkpoint, so the phase stays a function of the epoch on resume).

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
``<phase>/free_energy_gap`` (pre-training phases), ``train/loss`` (fine-tuning),
``<phase>/val_top_rbm_accuracy`` (top_rbm and generative phases: free-energy classification of the
single-label validation rows by the top RBM, :meth:`DeepBeliefNetwork.label_free_energies`),
``generative/train_recon_error`` / ``generative/val_recon_error`` (the wake phase's mean squared error of
every generative layer's top-down prediction), ``generative/train_top_recon_error``, and in every
epoch ``val/loss`` (BCE of the classifier as it stands: before fine-tuning it is the untrained
net), ``val/accuracy`` (argmax correct, over rows with exactly one label), ``val/macro_f1``
(threshold 0.5), ``val/exact_match``, ``phase`` (index into ``PHASE_KINDS``). Early stopping
on ``val/loss`` must ignore the other phases' epochs: use :class:`FinetuneEarlyStopping`.
"""

from __future__ import annotations

import math
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
LR_SCHEDULES = ("constant", "cosine")
PHASE_KINDS = ("rbm", "top_rbm", "finetune", "generative")
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
    finetune.setdefault("lr_schedule", "constant")  # absent from configs written before it existed
    if finetune["lr_schedule"] not in LR_SCHEDULES:
        raise choice_error("model.finetune.lr_schedule", finetune["lr_schedule"], LR_SCHEDULES)
    # Absent from configs written before the phase existed (checkpoints, tuned configs): disabled.
    generative = dict(model.get("generative") or {"epochs": 0})
    _check_number(generative, "epochs", "model.generative.epochs", integer=True)
    if generative["epochs"] > 0:
        _check_number(generative, "lr", "model.generative.lr", strictly_above=True)
        _check_number(generative, "momentum", "model.generative.momentum", below=1.0)
        _check_number(generative, "weight_decay", "model.generative.weight_decay")
        generative.setdefault("top_lr", top["lr"])
        generative.setdefault("cd_k", top["cd_k"])
        generative.setdefault("softmax_labels", True)
        if not isinstance(generative["softmax_labels"], bool):
            raise UserError(f"model.generative.softmax_labels must be true or false; got "
                            f"{generative['softmax_labels']!r}")
        _check_number(generative, "top_lr", "model.generative.top_lr", strictly_above=True)
        _check_number(generative, "cd_k", "model.generative.cd_k", integer=True, minimum=1)
    return {**dict(model), "hidden": hidden, "pretrain": pretrain, "top": top, "finetune": finetune,
            "generative": generative}


def phase_schedule(model: Mapping) -> list[str]:
    """Phase name of each epoch: ``rbm1``..``rbmN``, ``top_rbm``, ``finetune``, ``generative`` (validated config)."""
    schedule = [f"rbm{depth + 1}" for depth, n in enumerate(model["pretrain"]["epochs_per_layer"])
                for _ in range(n)]
    return (schedule + ["top_rbm"] * model["top"]["epochs"] + ["finetune"] * model["finetune"]["epochs"]
            + ["generative"] * model["generative"]["epochs"])


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
    """EarlyStopping that only counts fine-tuning epochs (other phases' epochs neither improve nor wait).

    When it stops fine-tuning and the schedule has generative epochs, training goes on with them
    (:meth:`DBNModule.stop_finetuning`) instead of ending: the dream needs that phase.
    """

    @staticmethod
    def _other_phase(pl_module: pl.LightningModule) -> bool:
        return isinstance(pl_module, DBNModule) and pl_module.current_phase != "finetune"

    def _check(self, trainer: pl.Trainer, pl_module: pl.LightningModule, check: Any) -> None:
        if self._other_phase(pl_module):
            return
        stopped_before = trainer.should_stop
        check(trainer, pl_module)
        if (trainer.should_stop and not stopped_before and isinstance(pl_module, DBNModule)
                and pl_module.config["generative"]["epochs"] > 0):
            trainer.should_stop = False
            pl_module.stop_finetuning(trainer.current_epoch + 1)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._check(trainer, pl_module, super().on_validation_end)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._check(trainer, pl_module, super().on_train_epoch_end)


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
        # The first epoch after an early stop of fine-tuning (-1: not stopped); in the checkpoint.
        self.register_buffer("finetune_stopped_at", torch.tensor(-1, dtype=torch.long))

    # --- schedule -------------------------------------------------------------------------------

    @property
    def total_epochs(self) -> int:
        return len(self.schedule)

    @property
    def n_pretrain_epochs(self) -> int:
        """Epochs before fine-tuning (greedy pre-training and the top RBM)."""
        return sum(phase not in ("finetune", "generative") for phase in self.schedule)

    @property
    def n_generative_epochs(self) -> int:
        return self.config["generative"]["epochs"]

    def phase_at(self, epoch: int) -> str:
        """The phase of ``epoch``; epochs past the schedule keep fine-tuning (or generative fine-tuning,
        when the schedule has it: the recognition weights must not move after it).

        After an early stop of fine-tuning (``finetune_stopped_at``) the generative epochs come next.
        """
        stopped_at = int(self.finetune_stopped_at)
        if stopped_at >= 0 and epoch >= stopped_at:
            return "generative"
        if epoch < len(self.schedule):
            return self.schedule[epoch]
        return "generative" if self.n_generative_epochs > 0 else "finetune"

    def stop_finetuning(self, next_epoch: int) -> None:
        """Fine-tuning stopped early: ``next_epoch`` starts the generative phase."""
        self.finetune_stopped_at.fill_(next_epoch)

    @property
    def current_phase(self) -> str:
        return self.phase_at(self.current_epoch)

    def rbm_of(self, phase: str) -> RBM:
        return self.dbn.top_rbm if phase in ("top_rbm", "generative") else self.dbn.rbms[int(phase[3:]) - 1]

    def cd_settings(self, phase: str) -> dict[str, Any]:
        """Keyword arguments of :meth:`RBM.contrastive_divergence_step` for ``phase`` (config's cd_k is k).

        The generative phase retrains the top RBM with its settings, at ``generative.top_lr`` with
        ``generative.cd_k`` Gibbs steps.
        """
        section = self.config["top"] if phase in ("top_rbm", "generative") else self.config["pretrain"]
        settings = {"k" if key == "cd_k" else key: section[key] for key in CD_KEYS}
        if phase == "generative":
            settings |= {"lr": self.config["generative"]["top_lr"], "k": self.config["generative"]["cd_k"]}
        return settings

    def rbm_input(self, phase: str, x: Tensor, y: Tensor) -> Tensor:
        """The data the RBM of ``phase`` models: activations of the layer below (+ labels for the top)."""
        if phase in ("top_rbm", "generative"):
            return self.dbn.top_rbm_input(x, y)
        return self.dbn.up_pass(x, int(phase[3:]) - 1)

    # --- Lightning hooks ------------------------------------------------------------------------

    def forward(self, x: Tensor) -> Tensor:
        return self.dbn(x)

    def configure_optimizers(self) -> Any:
        finetune = self.config["finetune"]
        parameters = self.dbn.classifier.parameters()
        if finetune["optimizer"] == "sgd":
            optimizer = torch.optim.SGD(parameters, lr=finetune["lr"], momentum=finetune["momentum"],
                                        weight_decay=finetune["weight_decay"])
        else:
            optimizer = torch.optim.AdamW(parameters, lr=finetune["lr"], weight_decay=finetune["weight_decay"])
        if finetune["lr_schedule"] == "constant":
            return optimizer
        # Cosine decay over the fine-tuning epochs (Loshchilov & Hutter 2017, no restarts): the last epochs
        # take small steps, so the model does not depend on where the last noisy step landed. Stepped once
        # per fine-tuning epoch (manual optimisation: see on_train_epoch_end); Lightning checkpoints its
        # state, so a resumed run continues the same curve.
        n_epochs = max(1, finetune["epochs"])
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda done: 0.5 * (1.0 + math.cos(math.pi * min(done, n_epochs) / n_epochs)))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}

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
        phase = self.current_phase
        if (phase in ("finetune", "generative") and self.n_pretrain_epochs > 0
                and not bool(self.dbn.classifier_initialised)):
            self.dbn.initialise_classifier_from_stack()
        # The flag is in state_dict too: a resumed generative phase does not restart its momentum.
        if phase == "generative" and not bool(self.dbn.generative_finetuned):
            self.dbn.begin_generative_finetuning()
        self.log("phase", float(self.phase_index(phase)), on_step=False, on_epoch=True)

    def on_train_epoch_end(self) -> None:
        scheduler = self.lr_schedulers()
        if scheduler is not None and self.current_phase == "finetune":
            self.log("finetune/lr", scheduler.get_last_lr()[0], on_step=False, on_epoch=True)
            scheduler.step()
        # After an early stop of fine-tuning the schedule's end is not max_epochs: stop here.
        stopped_at = int(self.finetune_stopped_at)
        if stopped_at >= 0 and self.current_epoch + 1 >= stopped_at + self.n_generative_epochs:
            self.trainer.should_stop = True

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
        rbm = self.rbm_of(phase)
        # Retraining the top RBM, its label units are one softmax group (measured: 9 of 10 dreams on the
        # diagonal instead of 7; README, "Dream report"), for single-gas (one-hot) batches: a mixture's
        # labels are not one of K. Only for these CD steps: a dream clamps the labels.
        if (phase == "generative" and self.config["generative"]["softmax_labels"]
                and bool((y.sum(dim=1) == 1).all())):
            rbm.softmax_units = self.dbn.n_labels
        with torch.autocast(device_type=self.device.type, enabled=False):
            try:
                error = rbm.contrastive_divergence_step(self.rbm_input(phase, x, y), generator=self.generator,
                                                        reduce_statistics=reduce, **self.cd_settings(phase))
            finally:
                rbm.softmax_units = 0
            if phase == "generative":
                generative = self.config["generative"]
                wake_error = self.dbn.wake_phase_step(x, generative["lr"], generative["momentum"],
                                                      generative["weight_decay"], reduce)
        if phase == "generative":
            self.log("generative/train_top_recon_error", error, on_step=False, on_epoch=True, batch_size=len(x),
                     sync_dist=True)
            error = wake_error
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
                            "recon_values": zeros.new_zeros(()), "free_energy": zeros.new_zeros(()),
                            "top_rbm_correct": zeros.new_zeros(())}

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
        with torch.autocast(device_type=self.device.type, enabled=False):
            if phase in ("top_rbm", "generative"):
                top_choice = self.dbn.label_free_energies(x.float()).argmin(dim=1)
                totals["top_rbm_correct"] += (top_choice == truth.float().argmax(dim=1))[single].sum()
            if phase == "generative":
                squared, n_values = self.dbn.generation_errors(x.float())
                totals["recon_sq"] += squared.double()
                totals["recon_values"] += n_values
            elif phase != "finetune":
                rbm, data = self.rbm_of(phase), self.rbm_input(phase, x, y).float()
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
        if phase in ("top_rbm", "generative") and totals["single_rows"] > 0:
            metrics[f"{phase}/val_top_rbm_accuracy"] = totals["top_rbm_correct"] / totals["single_rows"]
        if phase != "finetune" and totals["recon_values"] > 0:
            metrics[f"{phase}/val_recon_error"] = totals["recon_sq"] / totals["recon_values"]
            if self._train_reference is not None and phase != "generative":
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
