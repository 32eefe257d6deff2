"""The one-command audit: threat models in, attacks run, verdicts and a report out."""

from mirisk.audit.kinds import build_plan, read_config
from mirisk.audit.plan import AuditPlan, parse_accesses
from mirisk.audit.run import AuditReport, plan_audit, plan_for_subject, rerender, run_audit

__all__ = ["AuditPlan", "AuditReport", "build_plan", "parse_accesses", "plan_audit", "plan_for_subject",
           "read_config", "rerender", "run_audit"]
