"""Lightning callbacks of the training schedule: early stopping that counts fine-tuning epochs only, and a
checkpoint at every epoch's end (CD epochs make no optimiser step)."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.trainer.states import TrainerFn

from robert.model.phases import PhaseKind


class FinetuneEarlyStopping(EarlyStopping):
    """EarlyStopping that only counts fine-tuning epochs (other phases' epochs neither improve nor wait).

    When it stops fine-tuning, the module decides what follows (:meth:`RecogniserModule.after_finetune_stopped`):
    a DBN with generative epochs goes on with them (the dream needs that phase); anything else ends.
    """

    @staticmethod
    def _other_phase(pl_module: pl.LightningModule) -> bool:
        phase = getattr(pl_module, "current_phase", None)
        return phase is not None and phase.kind is not PhaseKind.FINETUNE

    def _check(self, trainer: pl.Trainer, pl_module: pl.LightningModule, check: Any) -> None:
        if self._other_phase(pl_module):
            return
        stopped_before = trainer.should_stop
        check(trainer, pl_module)
        if trainer.should_stop and not stopped_before and hasattr(pl_module, "after_finetune_stopped"):
            trainer.should_stop = pl_module.after_finetune_stopped(trainer.current_epoch + 1)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._check(trainer, pl_module, super().on_validation_end)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._check(trainer, pl_module, super().on_train_epoch_end)


class EpochCheckpoint(ModelCheckpoint):
    """A ModelCheckpoint that saves at every epoch's end, even an epoch with no optimiser step.

    Why: CD pre-training updates the weights without an optimiser, so ``trainer.global_step`` stays 0 through
    the pre-training epochs, and Lightning's ModelCheckpoint (which skips when the global step has not moved)
    writes nothing before fine-tuning: a run killed in pre-training would restart from scratch. Here "already
    saved" means "saved in this epoch at this step".
    """

    _last_saved_at: tuple[int, int] | None = None

    def _should_skip_saving_checkpoint(self, trainer: pl.Trainer) -> bool:
        return (bool(trainer.fast_dev_run) or trainer.state.fn != TrainerFn.FITTING or trainer.sanity_checking
                or self._last_saved_at == (trainer.current_epoch, trainer.global_step))

    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        super()._save_checkpoint(trainer, filepath)
        self._last_saved_at = (trainer.current_epoch, trainer.global_step)


class StartEpoch(Callback):
    """Records the epoch fit starts at (0 for a fresh run, > 0 after resuming)."""

    start_epoch = 0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.start_epoch = trainer.current_epoch


__all__ = ["EpochCheckpoint", "FinetuneEarlyStopping", "StartEpoch"]
