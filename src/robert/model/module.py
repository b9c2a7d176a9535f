"""Lightning training of a recogniser: supervised fine-tuning on detection targets, the same for every kind.

The DBN adds its pre-training phases in :class:`robert.model.dbn_module.DBNModule`; the MLP and CNN peers train
with this module as it is, through the same Trainer, callbacks, logger and registry, so their numbers compare.

Loss: binary cross-entropy of one sigmoid output per molecule against the batch's targets, weighted by the
batch's loss weights (:mod:`robert.spectra.detection`: weight 0 for an undetectable gas under
``labels.undetectable: ignore``), averaged over the weighted entries. Optimisation is manual
(``automatic_optimization = False``) because the DBN's CD phases are not gradients; fine-tuning steps the
optimiser of :meth:`configure_optimizers` via ``manual_backward``, so Lightning's precision plugins still apply.

Batches are :class:`robert.data.batches.ObservedBatch` objects; the network encodes their observation itself
(:meth:`robert.model.base.Recogniser.encode`). Logged every epoch: ``train/loss`` (fine-tuning epochs),
``val/loss``, ``val/macro_f1``, ``val/exact_match``, ``val/hamming_loss``, ``val/accuracy`` (rows with one
injected gas: argmax), ``phase`` (the index of the epoch's :class:`~robert.model.phases.PhaseKind`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor, nn
from torchmetrics import MeanMetric

from robert.errors import UserError
from robert.model.base import Recogniser
from robert.model.config import build_from_config, validate_model_config
from robert.model.metrics import DetectionMetrics
from robert.model.phases import FINETUNE, Phase


def weighted_bce(logits: Tensor, targets: Tensor, weights: Tensor) -> Tensor:
    """Mean binary cross-entropy over the entries with weight 1."""
    loss = nn.functional.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype), reduction="none")
    return (loss * weights).sum() / weights.sum().clamp(min=1.0)


class RecogniserModule(pl.LightningModule):
    """Fine-tunes the network of ``model`` (a ``conf/model/*.yaml`` mapping) by epoch schedule.

    ``seed`` fixes the initial weights (and the DBN's CD draws); ``label_names`` (molecules) are stored with the
    hyper-parameters. Give the Trainer ``max_epochs=module.total_epochs``.
    """

    def __init__(self, n_grid: int, n_labels: int, model: dict[str, Any], seed: int = 0,
                 label_names: list[str] | None = None) -> None:
        super().__init__()
        if label_names is not None and len(label_names) != n_labels:
            raise UserError(f"{len(label_names)} label names for {n_labels} labels")
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.config = validate_model_config(model)
        self.network: Recogniser = build_from_config(self.config, n_grid, n_labels, seed)
        self.schedule: list[Phase] = self.build_schedule()
        self.seed = seed
        self.epoch_means = nn.ModuleDict()  # per-step training values, logged once an epoch (log_epoch_mean)
        self.val_metrics = DetectionMetrics(n_labels)

    def build_schedule(self) -> list[Phase]:
        return [FINETUNE] * self.config["finetune"]["epochs"]

    # --- schedule -------------------------------------------------------------------------------

    @property
    def total_epochs(self) -> int:
        return len(self.schedule)

    def phase_at(self, epoch: int) -> Phase:
        """The phase of ``epoch``; epochs past the schedule keep the last phase."""
        return self.schedule[min(epoch, len(self.schedule) - 1)] if self.schedule else FINETUNE

    @property
    def current_phase(self) -> Phase:
        return self.phase_at(self.current_epoch)

    def after_finetune_stopped(self, next_epoch: int) -> bool:
        """Early stopping ended fine-tuning before ``next_epoch``: should training stop? (Peers: yes.)"""
        return True

    # --- Lightning hooks ------------------------------------------------------------------------

    def forward(self, x: Tensor) -> Tensor:
        return self.network(x)

    def configure_optimizers(self) -> Any:
        finetune = self.config["finetune"]
        parameters = self.network.classifier_parameters()
        if finetune["optimizer"] == "sgd":
            optimizer = torch.optim.SGD(parameters, lr=finetune["lr"], momentum=finetune["momentum"],
                                        weight_decay=finetune["weight_decay"])
        else:
            # fused: one kernel over all parameters instead of a loop of small ones (CPU and CUDA; measured ~2x
            # faster optimiser steps on 2 cores, benchmarks/train.py --speed)
            optimizer = torch.optim.AdamW(parameters, lr=finetune["lr"], weight_decay=finetune["weight_decay"],
                                          fused=True)
        if finetune["lr_schedule"] == "constant":
            return optimizer
        # Cosine decay over the fine-tuning epochs (Loshchilov & Hutter 2017, no restarts): the last epochs take
        # small steps, so the model does not depend on where the last noisy step landed. Stepped once per
        # fine-tuning epoch (on_train_epoch_end); Lightning checkpoints its state, so a resumed run continues it.
        n_epochs = max(1, finetune["epochs"])
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda done: 0.5 * (1.0 + math.cos(math.pi * min(done, n_epochs) / n_epochs)))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}

    def on_train_epoch_start(self) -> None:
        self.log("phase", float(self.current_phase.index), on_step=False, on_epoch=True)

    def log_epoch_mean(self, name: str, value: Tensor, rows: int) -> None:
        """Add one training step's ``value`` (a mean over ``rows``) to its epoch mean, logged at the epoch's end.

        Why not ``self.log(..., on_epoch=True)`` in the step: Lightning's call costs ~0.3 ms on 2 cores, about a
        tenth of a fine-tuning step (measured beside an empty step); a MeanMetric update costs ~0.02 ms, and it
        syncs across processes when computed."""
        if name not in self.epoch_means:
            self.epoch_means[name] = MeanMetric().to(self.device)
        self.epoch_means[name].update(value.detach(), rows)

    def _log_epoch_means(self) -> None:
        for name, mean in self.epoch_means.items():
            if mean.update_called:
                # one value an epoch: batch_size only stops Lightning guessing one from the batch (and warning)
                self.log(name, mean.compute(), on_step=False, on_epoch=True, prog_bar=True, batch_size=1)
                mean.reset()

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        # logged with the epoch's last batch, so that callbacks' on_train_epoch_end (run before the module's) see it
        if batch_idx + 1 >= self.trainer.num_training_batches:
            self._log_epoch_means()

    def on_train_epoch_end(self) -> None:
        self._log_epoch_means()  # an epoch of unknown length (no last batch seen): its means now
        scheduler = self.lr_schedulers()
        if scheduler is not None and self.current_phase == FINETUNE:
            self.log("finetune/lr", scheduler.get_last_lr()[0], on_step=False, on_epoch=True)
            scheduler.step()

    def inputs(self, batch: Any) -> Tensor:
        return self.network.encode(batch.observation).to(self.dtype)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        return self.finetune_step(self.inputs(batch), batch)

    def finetune_step(self, x: Tensor, batch: Any) -> Tensor:
        optimizer = self.optimizers()
        loss = weighted_bce(self(x), batch.targets, batch.weights)
        optimizer.zero_grad()
        self.manual_backward(loss)
        optimizer.step()
        self.log_epoch_mean("train/loss", loss, len(x))
        return loss.detach()

    # --- validation -----------------------------------------------------------------------------

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x = self.inputs(batch)
        self.val_metrics.update(self(x), batch.targets, batch.weights, batch.states)
        self.extra_validation(x, batch)

    def extra_validation(self, x: Tensor, batch: Any) -> None:
        """Kind-specific validation monitors (the DBN's reconstruction errors)."""

    def on_validation_epoch_end(self) -> None:
        for name, value in self.val_metrics.compute().items():
            self.log(f"val/{name}", value.float(), on_step=False, on_epoch=True, prog_bar=name == "loss",
                     sync_dist=True)
        self.val_metrics.reset()

    def predict_step(self, batch: Any, batch_idx: int) -> Tensor:
        return torch.sigmoid(self(self.inputs(batch)))


def module_for(n_grid: int, n_labels: int, model: Mapping[str, Any], seed: int,
               label_names: list[str] | None = None) -> RecogniserModule:
    """The Lightning module of ``model.kind``: the DBN's own, or the plain one for the peers."""
    from robert.model.dbn_module import DBNModule

    cls = DBNModule if model.get("kind", "dbn") == "dbn" else RecogniserModule
    return cls(n_grid, n_labels, dict(model), seed, label_names)


__all__ = ["RecogniserModule", "module_for", "weighted_bce"]
