"""Auditing a tabular model (e.g. a warfarin dosing regressor, or a risk classifier): attribute inference of a
sensitive column from the model's outputs (Fredrikson et al., USENIX Security 2014) and a
learned inversion from shadow data (after Yang et al., ACM CCS 2019), with values or bands."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pandas as pd

from mirisk.attacks.attribute import AttributeTask
from mirisk.audit.case import (
    AuditSubject,
    NoQueryChecks,
    SubjectOptions,
    UnitResult,
    recorded_format,
    refuse_options,
    register_kind,
)
from mirisk.audit.plan import AttackUnit, AuditPlan, epsilons, seed_of
from mirisk.audit.verdict import tabular_advantage, tabular_attack_level, tabular_recommendations
from mirisk.data.iwpc import IWPC_SCHEMA
from mirisk.errors import MiriskError
from mirisk.execution.backends import Backend
from mirisk.metrics.vulnerability import most_at_risk_records, tabular_vulnerability
from mirisk.models.imported import ImportSpec
from mirisk.models.tabular import TabularModel
from mirisk.models.tabular_import import is_manifest, load_any_tabular
from mirisk.models.tabular_store import FORMAT as TABULAR_FORMAT
from mirisk.pipelines.attribute import AttributeSetting, held_out_aux, run_attribute_attack
from mirisk.pipelines.iwpc import SENSITIVE, attack_tables, recorded_split, task_columns
from mirisk.pipelines.iwpc import dp_sweep as iwpc_dp_sweep
from mirisk.threats import AccessLevel

# The DP-SGD budgets retrained and measured by default: the IWPC model keeps its use down to 0.1.
TABULAR_EPSILONS = (1.0, 0.1)
INFERENCES = "inferences.csv"



def require_training_records(target: TabularModel, records: pd.DataFrame, where: str) -> None:
    """The audit measures what a model leaks about the people it was trained on: data that
    holds none of them is refused, never audited on non-members under that name."""
    if not target.is_member(records[target.schema.id_column]).any():
        raise MiriskError(f"none of the model's training records is in {where} (by column "
                          f"{target.schema.id_column!r}); the audit measures what the model leaks about the people it "
                          "was trained on, so give data that holds some of them")

class TabularCase(NoQueryChecks):
    """A tabular model, the records it was trained on and the attacker's population sample."""

    name = "tabular"
    title = "tabular model"
    default_accesses = "white-box,scores,top-k,label-only"
    config_keys = frozenset({"sensitive", "known"})
    deployable = False
    report_labels = {"records": "records", "person": "record", "judged": False, "at_risk": "records",
                     "dp_table": "attribute"}

    def claims(self, path: Path) -> bool:
        return recorded_format(path) == TABULAR_FORMAT or is_manifest(path)

    def load_model(self, path: Path, spec: ImportSpec | None) -> TabularModel:
        refuse_options(path, SubjectOptions(spec=spec), self.name)
        return load_any_tabular(path)

    def load(self, model: str | Path, data: str | None, options: SubjectOptions) -> AuditSubject:
        refuse_options(model, options, self.name)
        target = load_any_tabular(model)
        if data is not None and Path(data).is_dir():
            raise MiriskError(f"{data} is a folder; a tabular model is audited on a CSV table")
        records, population = attack_tables(target, data, options.aux)
        require_training_records(target, records, str(data) if data else "the model's recorded split")
        sensitive, known = task_columns(target, options.sensitive, options.known)
        return AuditSubject(self.name, target, records=records, aux=population, sensitive=sensitive,
                            known=tuple(known))

    def subject(self, target: TabularModel, records: pd.DataFrame, aux: pd.DataFrame | None,
                sensitive: str | None, known: tuple[str, ...] | None) -> AuditSubject:
        """The subject for a tabular model and tables already in memory: the people to attack
        and the attacker's population sample (None: half of the records the model was not
        trained on, as from files), checked against the model's schema."""
        for name, table in (("records", records), ("aux", aux)):
            if table is not None and not isinstance(table, pd.DataFrame):
                raise MiriskError(f"a tabular model's {name} are a pandas DataFrame, not {type(table).__name__}")
        schema = target.schema
        schema.validate(records, (*schema.features, schema.target, schema.id_column), what="the records")
        require_training_records(target, records, "the records")
        if aux is None:
            records, aux = held_out_aux(records, target, seed=0)
        schema.validate(aux, (*schema.features, schema.target), what="the auxiliary sample")
        sensitive, known = task_columns(target, sensitive, known)
        return AuditSubject(self.name, target, records=records.reset_index(drop=True), aux=aux.reset_index(drop=True),
                            sensitive=sensitive, known=tuple(known))

    def describe(self, subject: AuditSubject) -> dict[str, Any]:
        target = subject.target
        return {"kind": self.title, "task": "classification" if target.classifies else "regression",
                "model": target.kind, "dp": target.training.get("dp"),
                "metrics": target.metrics, "imported": target.training.get("imported"), "sensitive": subject.sensitive, "known": list(subject.known),
                "data": {"records": len(subject.records), "aux": len(subject.aux)}}

    def check_plan(self, plan: AuditPlan, subject: AuditSubject) -> None:
        """Refuse a query budget too small for an attribute attack to finish: these attacks
        cannot stop early with a partial answer, so the threat model would go untested."""
        if plan.budget is None:
            return
        grid = len(AttributeTask(subject.target.schema, subject.sensitive, subject.known).candidate_grid())
        needs = {"fredrikson": len(subject.aux) + len(subject.records) * grid,
                 "learned": (len(subject.aux) + len(subject.records)) * grid}
        short = {unit.attack: needs[unit.attack] for unit in plan.units if needs[unit.attack] > plan.budget}
        if short:
            raise MiriskError(f"a query budget of {plan.budget:,} cannot run the attribute attacks, which need "
                              + ", ".join(f"{count:,} ({attack})" for attack, count in sorted(short.items()))
                              + " queries for these records and this auxiliary sample; the threat model would go "
                                "untested: raise --budget or leave it out")

    def plan_units(self, accesses, budget, config, gradients):
        settings = {
            "seed": seed_of(config),
            "sensitive": config.get("sensitive"),
            "known": config.get("known"),
            "epsilons": epsilons(config, TABULAR_EPSILONS),
        }
        units, skipped = [], {}
        for access in accesses:
            if access is AccessLevel.TOP_K:
                skipped[access.value] = ("a tabular model answers with one value or class probabilities; top-k is not "
                                         "modelled for it, and label-only covers the strictest output")
                continue
            if access is AccessLevel.WHITE_BOX:
                skipped[access.value] = ("the attribute attacks need only the model's outputs, so white-box access "
                                         "adds nothing they use; the scores threat model covers it")
                continue
            served = "value" if access is AccessLevel.SCORES else "band"
            units.append(AttackUnit(f"{access.value}-fredrikson", "fredrikson", access, served,
                                    {"outcome": "true", "budget": budget}))
            units.append(AttackUnit(f"{access.value}-learned", "learned", access, served,
                                    {"outcome": "true", "budget": budget}))
            if access is AccessLevel.SCORES:
                units.append(AttackUnit("scores-fredrikson-model-outcome", "fredrikson", access, served,
                                        {"outcome": "model", "budget": budget}))
        return units, skipped, settings

    def run_unit(self, unit: AttackUnit, settings: dict[str, Any], subject: AuditSubject,
                 redact: bool) -> tuple[dict[str, Any], dict[str, bytes]]:
        setting = AttributeSetting(subject.sensitive, subject.known, unit.attack, unit.policy,
                                   unit.params["outcome"], budget=unit.params.get("budget"), seed=settings["seed"])
        report = run_attribute_attack(subject.target, subject.records, subject.aux, setting)
        if redact:
            return report.payload, {}
        return report.payload, {INFERENCES: report.inferences.to_csv(index=False).encode("utf-8")}

    def attack_level(self, metrics: dict[str, Any]) -> tuple[str, str]:
        return tabular_attack_level(metrics)

    def attack_strength(self, metrics: dict[str, Any]) -> float:
        return tabular_advantage(metrics)

    def headline(self, metrics: dict[str, Any]) -> dict[str, Any]:
        train = metrics["train"]
        return {key: train[key] for key in ("accuracy", "baseline_accuracy", "population_accuracy", "ideal_accuracy",
                                             "advantage", "mcc")} | {
            "test_accuracy": metrics["test"]["accuracy"] if metrics["test"] else None}

    def recommendations(self, plan, results, description, defences):
        return tabular_recommendations(plan, results, defences.get("dp_sweep"),
                                       classifier=description.get("task") == "classification")

    def vulnerability(self, subject: AuditSubject) -> dict[str, Any]:
        return tabular_vulnerability(subject.target)

    def at_risk(self, plan: AuditPlan, subject: AuditSubject, results: dict[str, UnitResult]) -> Any:
        first = next((unit for unit in plan.units if unit.attack == "fredrikson"), None)
        table = results[first.id].files.get(INFERENCES) if first else None
        if table is None:
            return None
        id_column = subject.target.schema.id_column
        return most_at_risk_records(pd.read_csv(io.BytesIO(table), dtype={id_column: str}), id_column,
                                    subject.sensitive)

    def retrainable(self, subject: AuditSubject) -> bool:
        target = subject.target
        iwpc = target.schema.as_dict() == IWPC_SCHEMA.as_dict()
        return bool(iwpc and target.kind == "linear" and target.training.get("data") and subject.sensitive in SENSITIVE)

    def dp_sweep(self, plan: AuditPlan, subject: AuditSubject, results: dict[str, dict[str, Any]],
                 backend: Backend | None) -> list[dict[str, Any]]:
        target = subject.target
        return iwpc_dp_sweep(recorded_split(target), (*plan.settings["epsilons"], None), seed=plan.settings["seed"])

    def chart_series(self, schema: str) -> tuple[list[tuple[str, str, str]], str]:
        return [("accuracy", "baseline_accuracy", "attack accuracy (training records)")], "prior only"


register_kind(TabularCase())
