"""Networks as files: a JSON spec (kind + constructor arguments) and a plain ``state_dict``.

Loading never unpickles objects: the weights load with ``torch.load(weights_only=True)``. A spec written before
the peers existed (no ``kind``) is a DBN on the depth channel alone, ``n_visible`` grid cells.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from robert.errors import UserError
from robert.model.base import Recogniser
from robert.model.cnn import ConvNetwork
from robert.model.dbn import DeepBeliefNetwork
from robert.model.mlp import MLPNetwork

NETWORKS: dict[str, type[Recogniser]] = {"dbn": DeepBeliefNetwork, "mlp": MLPNetwork, "cnn": ConvNetwork}
WEIGHTS_FILE, SPEC_FILE = "weights.pt", "network.json"


def network_spec(network: Recogniser, molecules: list[str], **extra: Any) -> dict[str, Any]:
    """What :func:`build_network` needs, plus the label names and any ``extra`` facts (JSON)."""
    return {"kind": network.kind, "arguments": network.spec(), "molecules": list(molecules), **extra}


def build_network(spec: dict[str, Any]) -> Recogniser:
    if "kind" not in spec:  # DBNs logged before the peers existed: one channel, n_visible cells
        return DeepBeliefNetwork(spec["n_visible"], ["depth"], len(spec["molecules"]), spec["hidden"],
                                 spec["visible"], spec["n_persistent_chains"], spec["seed"])
    if spec["kind"] not in NETWORKS:
        raise UserError(f"network kind {spec['kind']!r} is unknown; expected one of: {', '.join(NETWORKS)}")
    arguments = dict(spec["arguments"])
    if spec["kind"] == "dbn":
        arguments["visible_type"] = arguments.pop("visible")
    return NETWORKS[spec["kind"]](**arguments)


def save_network(network: Recogniser, spec: dict[str, Any], directory: Path) -> dict[str, str]:
    """Write weights + spec under ``directory``; returns the pyfunc ``artifacts`` mapping."""
    directory.mkdir(parents=True, exist_ok=True)
    weights, spec_path = directory / WEIGHTS_FILE, directory / SPEC_FILE
    torch.save({k: v.detach().cpu() for k, v in network.state_dict().items()}, weights)
    spec_path.write_text(json.dumps(spec, indent=2))
    return {"weights": str(weights), "network": str(spec_path)}


def load_network(weights_path: Path, spec_path: Path) -> tuple[Recogniser, dict[str, Any]]:
    """The network (eval mode) and its spec."""
    spec = json.loads(Path(spec_path).read_text())
    network = build_network(spec)
    state = torch.load(weights_path, weights_only=True)
    # versions logged before input standardisation: identity scaling
    state = {"input_mean": network.input_mean, "input_std": network.input_std} | state
    network.load_state_dict(state)
    return network.eval(), spec


__all__ = ["NETWORKS", "build_network", "load_network", "network_spec", "save_network"]
