"""Checks of the ``model`` config group (``conf/model/*.yaml``), and the network each config builds.

Every kind has ``kind``, ``inputs`` (channels), ``batch_size`` and a ``finetune`` section (the supervised
training); the DBN adds ``pretrain``, ``top`` and ``generative``, the MLP ``hidden``/``dropout``, the CNN its
convolution settings. Errors are one-line UserErrors naming the field (``model.finetune.lr must be ...``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from robert.config_checks import (
    check_bool,
    check_choice,
    check_mapping,
    check_number,
    check_positive,
    check_positive_int,
    require,
)
from robert.errors import UserError
from robert.model.base import Recogniser, validate_channels
from robert.model.cnn import ConvNetwork
from robert.model.dbn import DeepBeliefNetwork, validate_hidden_widths
from robert.model.mlp import MLPNetwork
from robert.model.rbm import VISIBLE_TYPES

KINDS = ("dbn", "mlp", "cnn")
OPTIMIZERS = ("adamw", "sgd")
LR_SCHEDULES = ("constant", "cosine")
CLASSIFIER_INITS = ("glorot", "stack")
# CD settings the top RBM takes from ``pretrain`` unless ``top`` overrides them.
CD_KEYS = ("lr", "cd_k", "persistent", "momentum", "weight_decay")


def _section(model: Mapping, name: str) -> dict[str, Any]:
    return dict(check_mapping(require(model, name, f"model.{name}"), f"model.{name}"))


def _cd_section(section: Mapping, prefix: str) -> None:
    check_positive(require(section, "lr", f"{prefix}.lr"), f"{prefix}.lr")
    check_number(require(section, "cd_k", f"{prefix}.cd_k"), f"{prefix}.cd_k", integer=True, minimum=1)
    check_number(require(section, "momentum", f"{prefix}.momentum"), f"{prefix}.momentum", minimum=0, below=1)
    check_number(require(section, "weight_decay", f"{prefix}.weight_decay"), f"{prefix}.weight_decay", minimum=0)
    check_bool(section.get("persistent"), f"{prefix}.persistent")


def _epochs(section: Mapping, field: str) -> int:
    return int(check_number(require(section, "epochs", field), field, integer=True, minimum=0))


def _finetune(model: Mapping) -> dict[str, Any]:
    finetune = _section(model, "finetune")
    _epochs(finetune, "model.finetune.epochs")
    check_positive(require(finetune, "lr", "model.finetune.lr"), "model.finetune.lr")
    check_number(require(finetune, "weight_decay", "model.finetune.weight_decay"), "model.finetune.weight_decay",
                 minimum=0)
    check_choice(finetune.get("optimizer"), "model.finetune.optimizer", OPTIMIZERS)
    if finetune["optimizer"] == "sgd":
        check_number(require(finetune, "momentum", "model.finetune.momentum"), "model.finetune.momentum",
                     minimum=0, below=1)
    finetune.setdefault("lr_schedule", "constant")  # absent from configs written before it existed
    check_choice(finetune["lr_schedule"], "model.finetune.lr_schedule", LR_SCHEDULES)
    return finetune


def _dbn(model: Mapping, out: dict[str, Any]) -> dict[str, Any]:
    hidden = validate_hidden_widths(model.get("hidden"), "model.hidden")
    check_choice(model.get("visible"), "model.visible", VISIBLE_TYPES)
    pretrain, top = _section(model, "pretrain"), _section(model, "top")
    _cd_section(pretrain, "model.pretrain")
    check_positive_int(pretrain.get("n_persistent_chains"), "model.pretrain.n_persistent_chains")
    n_stacked = len(hidden) - 1
    epochs = pretrain.get("epochs_per_layer")
    epochs_list = [epochs] * n_stacked if isinstance(epochs, int) and not isinstance(epochs, bool) else epochs
    if not isinstance(epochs_list, Sequence) or isinstance(epochs_list, str) or len(epochs_list) != n_stacked:
        raise UserError(f"model.pretrain.epochs_per_layer must be an integer or a list of {n_stacked} integers "
                        f"(one per stacked RBM below the top RBM); got {epochs!r}")
    pretrain["epochs_per_layer"] = [int(check_number(n, f"model.pretrain.epochs_per_layer[{i}]", integer=True,
                                                     minimum=0)) for i, n in enumerate(epochs_list)]
    # absent from configs written before the choice existed: the stack initialised the classifier then
    out["finetune"].setdefault("init", "stack")
    check_choice(out["finetune"]["init"], "model.finetune.init", CLASSIFIER_INITS)
    top = {**{key: pretrain[key] for key in CD_KEYS}, **top}
    _epochs(top, "model.top.epochs")
    _cd_section(top, "model.top")
    # absent from configs written before the phase existed (checkpoints, tuned configs): disabled
    generative = dict(model.get("generative") or {"epochs": 0})
    if _epochs(generative, "model.generative.epochs") > 0:
        check_positive(require(generative, "lr", "model.generative.lr"), "model.generative.lr")
        check_number(require(generative, "momentum", "model.generative.momentum"), "model.generative.momentum",
                     minimum=0, below=1)
        check_number(require(generative, "weight_decay", "model.generative.weight_decay"),
                     "model.generative.weight_decay", minimum=0)
        generative.setdefault("top_lr", top["lr"])
        generative.setdefault("cd_k", top["cd_k"])
        generative.setdefault("softmax_labels", True)
        check_bool(generative["softmax_labels"], "model.generative.softmax_labels")
        check_positive(generative["top_lr"], "model.generative.top_lr")
        check_number(generative["cd_k"], "model.generative.cd_k", integer=True, minimum=1)
    return out | {"hidden": hidden, "pretrain": pretrain, "top": top, "generative": generative}


def _mlp(model: Mapping, out: dict[str, Any]) -> dict[str, Any]:
    hidden = model.get("hidden")
    if isinstance(hidden, str) or not isinstance(hidden, Sequence) or not hidden:
        raise UserError(f"model.hidden must be a list of layer widths, e.g. [500, 200, 50]; got {hidden!r}")
    widths = [check_positive_int(h, f"model.hidden[{i}]") for i, h in enumerate(hidden)]
    dropout = check_number(model.get("dropout", 0.0), "model.dropout", minimum=0, below=1)
    return out | {"hidden": widths, "dropout": dropout}


def _cnn(model: Mapping, out: dict[str, Any]) -> dict[str, Any]:
    def widths(key: str) -> list[int]:
        value = model.get(key)
        if isinstance(value, str) or not isinstance(value, Sequence) or not value:
            raise UserError(f"model.{key} must be a non-empty list of positive integers; got {value!r}")
        return [check_positive_int(v, f"model.{key}[{i}]") for i, v in enumerate(value)]

    return out | {"filters": widths("filters"), "dense": widths("dense"),
                  "kernel_size": check_positive_int(model.get("kernel_size"), "model.kernel_size"),
                  "pool": check_positive_int(model.get("pool"), "model.pool"),
                  "dropout": check_number(model.get("dropout", 0.0), "model.dropout", minimum=0, below=1)}


def validate_model_config(model: Mapping) -> dict[str, Any]:
    """Check a ``conf/model/*.yaml`` mapping; return it normalised (plain types, defaults filled in).

    Normalised: a config without ``kind`` is a DBN (configs written before the peers existed), without
    ``inputs`` it reads the depth channel alone; a DBN's ``pretrain.epochs_per_layer`` becomes one int per
    stacked RBM and ``top`` gets the CD settings it does not override from ``pretrain``.
    """
    check_mapping(model, "model")
    kind = check_choice(model.get("kind", "dbn"), "model.kind", KINDS)
    out = {**dict(model), "kind": kind, "inputs": validate_channels(model.get("inputs", ["depth"])),
           "standardise_inputs": check_bool(model.get("standardise_inputs", True), "model.standardise_inputs"),
           "batch_size": check_positive_int(model.get("batch_size"), "model.batch_size"),
           "finetune": _finetune(model)}
    return {"dbn": _dbn, "mlp": _mlp, "cnn": _cnn}[kind](model, out)


def build_from_config(model: Mapping, n_grid: int, n_labels: int, seed: int) -> Recogniser:
    """The untrained network of a validated model config."""
    channels = model["inputs"]
    if model["kind"] == "dbn":
        return DeepBeliefNetwork(n_grid, channels, n_labels, model["hidden"], model["visible"],
                                 model["pretrain"]["n_persistent_chains"], seed)
    if model["kind"] == "mlp":
        return MLPNetwork(n_grid, channels, n_labels, model["hidden"], model["dropout"], seed)
    return ConvNetwork(n_grid, channels, n_labels, model["filters"], model["kernel_size"], model["pool"],
                       model["dense"], model["dropout"], seed)


__all__ = ["CD_KEYS", "KINDS", "LR_SCHEDULES", "OPTIMIZERS", "build_from_config", "validate_model_config"]
