"""Our transit depths against TauREx 3's TransmissionModel on the same atmospheres and the same (tiny) opacity cache.

Runs when the optional extra `validate` (taurex) is installed, as `make test` does.
"""

from __future__ import annotations

from helpers.taurex import TAUREX, agreement_with_taurex, tiny_cache_models
from robert.physics.model import TransmissionModel

pytestmark = TAUREX


def test_twenty_random_cases_agree_with_taurex_transmission(tiny_cache):
    models = tiny_cache_models(tiny_cache, "simulate=transmission")
    assert all(isinstance(model, TransmissionModel) for model in models.values())
    result = agreement_with_taurex(models, tiny_cache)
    # the agreed criterion: median |relative difference| of the transit depth <= 1 %, Pearson r >= 0.99
    assert result.median_rel_diff <= 0.01
    assert result.min_pearson >= 0.99
