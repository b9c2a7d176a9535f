"""Our emission spectra against TauREx 3 on the same atmospheres and the same (tiny) opacity cache.

Runs when the optional extra `validate` (taurex) is installed, as `make test` does.
"""

from __future__ import annotations

from helpers.taurex import TAUREX, agreement_with_taurex, tiny_cache_models
from robert.physics.model import EmissionModel

pytestmark = TAUREX


def test_twenty_random_cases_agree_with_taurex(tiny_cache):
    models = tiny_cache_models(tiny_cache)
    assert all(isinstance(model, EmissionModel) for model in models.values())
    result = agreement_with_taurex(models, tiny_cache)
    # the agreed criterion: median |relative difference| <= 2 %, the worst case (its median) <= 10 %
    assert result.median_rel_diff <= 0.02
    assert max(case["median_rel_diff"] for case in result.per_case) <= 0.10
    assert result.min_pearson >= 0.99
