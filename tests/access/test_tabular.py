"""The tabular oracle: values or bands, and a budget it never overspends."""

import numpy as np
import pytest

from mirisk.access.oracle import QueryBudgetExhausted
from mirisk.access.tabular import TabularOracle
from mirisk.errors import MiriskError


def test_values_and_bands_agree(iwpc_linear, iwpc_split):
    patients = iwpc_split.test[:50]
    values = TabularOracle(iwpc_linear).query(patients)
    bands = TabularOracle(iwpc_linear, output="band", bands=(21, 49)).query(patients)
    assert np.array_equal(values, iwpc_linear.predict(patients))
    assert np.array_equal(bands, (values >= 21).astype(int) + (values >= 49).astype(int))


def test_budget_is_enforced_per_record(iwpc_linear, iwpc_split):
    oracle = TabularOracle(iwpc_linear, budget=30)
    oracle.query(iwpc_split.test[:20])
    with pytest.raises(QueryBudgetExhausted):
        oracle.query(iwpc_split.test[:11])
    assert oracle.queries_used == 20 and oracle.remaining == 10


@pytest.mark.parametrize(("options", "message"), [({"output": "scores"}, "unknown tabular output"),
                                                  ({"bands": (49, 21)}, "increasing"), ({"budget": -1}, "must be at least 0")])
def test_bad_settings_are_named(iwpc_linear, options, message):
    with pytest.raises(MiriskError, match=message):
        TabularOracle(iwpc_linear, **options)
