"""The RobERt model: RBMs, the deep belief network and its Lightning training module."""

from robert.model.dbn import DeepBeliefNetwork, validate_hidden_widths
from robert.model.rbm import RBM

__all__ = ["RBM", "DeepBeliefNetwork", "validate_hidden_widths"]
