"""Lightning training of the DBN: greedy CD pre-training, top RBM, fine-tuning, generative fine-tuning.

All in one ``trainer.fit``. Why hand-written: Lightning has no RBM/DBN module (see :mod:`robert.model.rbm`).
Why one module with a phase schedule rather than one fit per phase: the phase is a pure function of the epoch
(:mod:`robert.model.phases`), which Lightning checkpoints and restores, so ``trainer.fit(ckpt_path=...)``
resumes in the right layer/phase with no extra bookkeeping, and one MLflow run holds all the curves.

Schedule: each stacked RBM for ``pretrain.epochs_per_layer`` epochs, the top RBM for ``top.epochs``, supervised
fine-tuning (:class:`robert.model.module.RecogniserModule`) for ``finetune.epochs``, then ``generative.epochs``
of our variant of the up-down algorithm (Hinton, Osindero & Teh 2006; :mod:`robert.model.dbn`): with the
fine-tuned classifier frozen as the recognition model, each batch retrains the top RBM by CD on (the
classifier's penultimate states, labels) and the stack's downward weights by the wake-phase delta rule, so the
dream runs a generative path that keeps the class information. When early stopping ends fine-tuning, the
generative epochs follow at once (the epoch it stopped at is a buffer in the checkpoint).

Where fine-tuning starts (``finetune.init``): ``stack`` copies the pre-trained recognition weights into the
classifier, as the paper's DBN did; ``glorot`` starts it from Glorot-uniform weights and leaves the pre-trained
stack to the generative path. Measured on the realistic set (docs/training.md): the pre-trained stack saturates
most first-layer sigmoid units on these inputs and fine-tunes to a far lower validation macro-F1 than the same
classifier from Glorot weights in the same epochs, so the default is ``glorot``; the generative fine-tuning then
aligns the generative path with the classifier that was actually trained.

The top RBM's label units are the batch's training targets (one-hot for single-gas injected labels; the
detected gases, possibly none, for detection labels). CD updates are not gradients: they run in float32 with
autocast off, and under DDP their statistics are all-reduced so every process makes the same update.

Logged per epoch beside the base module's metrics: ``<phase>/train_recon_error``, ``<phase>/val_recon_error``,
``<phase>/free_energy_gap`` (pre-training phases), ``<phase>/val_top_rbm_accuracy`` (top-RBM phases:
free-energy classification of the single-label validation rows), ``generative/train_top_recon_error``.
"""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor
from torchmetrics import MeanMetric

from robert.model.config import CD_KEYS
from robert.model.dbn import DeepBeliefNetwork
from robert.model.module import RecogniserModule
from robert.model.phases import GENERATIVE, Phase, PhaseKind, dbn_schedule
from robert.model.rbm import RBM
from robert.spectra.detection import State

FREE_ENERGY_REFERENCE_ROWS = 256  # training rows kept per epoch to compare free energies against


class DBNModule(RecogniserModule):
    """Pre-trains (CD), builds the top RBM, fine-tunes and generatively fine-tunes a :class:`DeepBeliefNetwork`."""

    network: DeepBeliefNetwork

    def __init__(self, n_grid: int, n_labels: int, model: dict[str, Any], seed: int = 0,
                 label_names: list[str] | None = None) -> None:
        super().__init__(n_grid, n_labels, model, seed, label_names)
        self.generator: torch.Generator | None = None
        self._restored_generator: tuple[str, Tensor] | None = None
        self._train_reference: tuple[Tensor, Tensor] | None = None
        self.monitors = torch.nn.ModuleDict({name: MeanMetric() for name in
                                             ("recon_error", "free_energy", "top_rbm_accuracy")})
        # The first epoch after an early stop of fine-tuning (-1: not stopped); in the checkpoint.
        self.register_buffer("finetune_stopped_at", torch.tensor(-1, dtype=torch.long))

    @property
    def dbn(self) -> DeepBeliefNetwork:
        return self.network

    def build_schedule(self) -> list[Phase]:
        config = self.config
        return dbn_schedule(config["pretrain"]["epochs_per_layer"], config["top"]["epochs"],
                            config["finetune"]["epochs"], config["generative"]["epochs"])

    # --- schedule -------------------------------------------------------------------------------

    @property
    def n_pretrain_epochs(self) -> int:
        """Epochs before fine-tuning (greedy pre-training and the top RBM)."""
        return sum(phase.kind in (PhaseKind.PRETRAIN, PhaseKind.TOP_RBM) for phase in self.schedule)

    @property
    def n_generative_epochs(self) -> int:
        return self.config["generative"]["epochs"]

    def phase_at(self, epoch: int) -> Phase:
        """After an early stop of fine-tuning the generative epochs come next; past the schedule, the last phase
        (generative fine-tuning when there is one: the recognition weights must not move after it)."""
        stopped_at = int(self.finetune_stopped_at)
        if stopped_at >= 0 and epoch >= stopped_at:
            return GENERATIVE
        return super().phase_at(epoch)

    def after_finetune_stopped(self, next_epoch: int) -> bool:
        if self.n_generative_epochs == 0:
            return True
        self.finetune_stopped_at.fill_(next_epoch)
        return False

    def rbm_of(self, phase: Phase) -> RBM:
        return self.dbn.top_rbm if phase.uses_top_rbm else self.dbn.rbms[phase.layer]

    def cd_settings(self, phase: Phase) -> dict[str, Any]:
        """Keyword arguments of :meth:`RBM.contrastive_divergence_step` for ``phase`` (config's cd_k is k).

        The generative phase retrains the top RBM with its settings, at ``generative.top_lr`` with
        ``generative.cd_k`` Gibbs steps.
        """
        section = self.config["top"] if phase.uses_top_rbm else self.config["pretrain"]
        settings = {"k" if key == "cd_k" else key: section[key] for key in CD_KEYS}
        if phase.kind is PhaseKind.GENERATIVE:
            settings |= {"lr": self.config["generative"]["top_lr"], "k": self.config["generative"]["cd_k"]}
        return settings

    def rbm_input(self, phase: Phase, x: Tensor, labels: Tensor) -> Tensor:
        """The data the RBM of ``phase`` models: activations of the layer below (+ labels for the top)."""
        if phase.uses_top_rbm:
            return self.dbn.top_rbm_input(x, labels)
        return self.dbn.up_pass(x, phase.layer)

    # --- Lightning hooks ------------------------------------------------------------------------

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
            checkpoint["robert_generator"] = {"device_type": self.device.type, "state": self.generator.get_state()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get("robert_generator")
        if saved is not None:
            self._restored_generator = (saved["device_type"], saved["state"])

    def on_train_epoch_start(self) -> None:
        self._train_reference = None
        # Fine-tuning starts from the pre-trained stack (unless there was no pre-training at all: then the
        # classifier keeps its Glorot initialisation). The flag is in state_dict: a resume does not copy again.
        phase = self.current_phase
        if (phase.kind in (PhaseKind.FINETUNE, PhaseKind.GENERATIVE) and self.n_pretrain_epochs > 0
                and self.config["finetune"]["init"] == "stack" and not bool(self.dbn.classifier_initialised)):
            self.dbn.initialise_classifier_from_stack()
        # The flag is in state_dict too: a resumed generative phase does not restart its momentum.
        if phase.kind is PhaseKind.GENERATIVE and not bool(self.dbn.generative_finetuned):
            self.dbn.begin_generative_finetuning()
        super().on_train_epoch_start()

    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()
        # After an early stop of fine-tuning the schedule's end is not max_epochs: stop after the generative epochs.
        stopped_at = int(self.finetune_stopped_at)
        if stopped_at >= 0 and self.current_epoch + 1 >= stopped_at + self.n_generative_epochs:
            self.trainer.should_stop = True

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = self.inputs(batch), batch.targets.to(self.dtype)
        phase = self.current_phase
        if self._train_reference is None:
            rows = slice(0, FREE_ENERGY_REFERENCE_ROWS)
            self._train_reference = (x[rows].detach(), y[rows].detach())
        if phase.kind is PhaseKind.FINETUNE:
            return self.finetune_step(x, batch)
        reduce = None
        if self.trainer.world_size > 1:
            def reduce(tensor: Tensor) -> Tensor:
                return self.trainer.strategy.reduce(tensor, reduce_op="mean")
        rbm = self.rbm_of(phase)
        # Retraining the top RBM, its label units are one softmax group for batches with exactly one label per
        # row (Hinton, Osindero & Teh 2006; measured with the paper-regime DBN: more dreams on the diagonal).
        # Only for these CD steps: a dream clamps the labels.
        if (phase.kind is PhaseKind.GENERATIVE and self.config["generative"]["softmax_labels"]
                and bool((y.sum(dim=1) == 1).all())):
            rbm.softmax_units = self.dbn.n_labels
        with torch.autocast(device_type=self.device.type, enabled=False):  # CD statistics in float32
            try:
                error = rbm.contrastive_divergence_step(self.rbm_input(phase, x.float(), y.float()),
                                                        generator=self.generator, reduce_statistics=reduce,
                                                        **self.cd_settings(phase))
            finally:
                rbm.softmax_units = 0
            if phase.kind is PhaseKind.GENERATIVE:
                generative = self.config["generative"]
                self.log_epoch_mean("generative/train_top_recon_error", error, len(x))
                error = self.dbn.wake_phase_step(x.float(), generative["lr"], generative["momentum"],
                                                 generative["weight_decay"], reduce)
        self.log_epoch_mean(f"{phase.name}/train_recon_error", error, len(x))
        return error

    # --- validation -----------------------------------------------------------------------------

    def extra_validation(self, x: Tensor, batch: Any) -> None:
        phase = self.current_phase
        if phase.kind is PhaseKind.FINETUNE:
            return
        x, y = x.float(), batch.targets.float()
        with torch.autocast(device_type=self.device.type, enabled=False):
            if phase.uses_top_rbm:
                injected = batch.states != int(State.ABSENT)
                single = injected.sum(1) == 1
                if bool(single.any()):
                    choice = self.dbn.label_free_energies(x[single]).argmin(dim=1)
                    self.monitors["top_rbm_accuracy"].update((choice == injected[single].float().argmax(1)).float())
            if phase.kind is PhaseKind.GENERATIVE:
                squared, n_values = self.dbn.generation_errors(x)
                self.monitors["recon_error"].update(squared / n_values, n_values)
            else:
                rbm, data = self.rbm_of(phase), self.rbm_input(phase, x, y)
                reconstruction = rbm.visible_mean(rbm.hidden_probs(data))
                self.monitors["recon_error"].update(((reconstruction - data) ** 2).mean(), data.numel())
                self.monitors["free_energy"].update(rbm.free_energy(data))

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        phase = self.current_phase
        monitors = {name: metric for name, metric in self.monitors.items() if metric.update_called}
        if "top_rbm_accuracy" in monitors:
            self.log(f"{phase.name}/val_top_rbm_accuracy", monitors["top_rbm_accuracy"].compute(), on_epoch=True,
                     sync_dist=True)
        if "recon_error" in monitors:
            self.log(f"{phase.name}/val_recon_error", monitors["recon_error"].compute(), on_epoch=True,
                     sync_dist=True)
        if "free_energy" in monitors and self._train_reference is not None:
            rbm = self.rbm_of(phase)
            reference = self.rbm_input(phase, *(t.float() for t in self._train_reference))
            train_free_energy = self.trainer.strategy.reduce(rbm.free_energy(reference).mean(), reduce_op="mean")
            self.log(f"{phase.name}/free_energy_gap", monitors["free_energy"].compute() - train_free_energy,
                     on_epoch=True, sync_dist=True)
        for metric in self.monitors.values():
            metric.reset()


__all__ = ["DBNModule"]
