"""The tabular kind refuses data without the model's training records: a verdict computed on
non-members must never read as one "on training records" (it did, and with scores access
it then failed on the missing training metrics)."""

from __future__ import annotations

import pandas as pd
import pytest

import mirisk
from mirisk.audit.run import plan_audit
from mirisk.models.tabular_store import save_tabular_target


def test_a_table_without_training_records_is_refused_from_files(iwpc_linear, iwpc_split, tmp_path):
    model = save_tabular_target(iwpc_linear, tmp_path / "model")
    outsiders = tmp_path / "outsiders.csv"
    iwpc_split.test.to_csv(outsiders, index=False)
    with pytest.raises(mirisk.MiriskError, match="none of the model's training records is in .*outsiders.csv"):
        plan_audit(model, str(outsiders), None, "scores", None)


def test_a_dataframe_without_training_records_is_refused_in_memory(iwpc_linear, iwpc_split):
    with pytest.raises(mirisk.MiriskError, match="none of the model's training records is in the records"):
        mirisk.audit(iwpc_linear, iwpc_split.test, aux=iwpc_split.aux, threat_models="scores")


def test_a_table_with_training_records_is_audited_on_them(iwpc_linear, iwpc_split, tmp_path):
    model = save_tabular_target(iwpc_linear, tmp_path / "model")
    table = tmp_path / "patients.csv"
    pd.concat([iwpc_split.train.head(300), iwpc_split.test.head(100)]).to_csv(table, index=False)
    plan, subject = plan_audit(model, str(table), None, "scores", None)
    assert subject.target.is_member(subject.records["patient_id"]).sum() == 300 and plan.units
