"""The one-command audit: threat models in, attacks run, verdicts and a report out."""

from mirisk.audit.plan import AuditPlan, build_plan, parse_accesses
from mirisk.audit.run import plan_audit, rerender, run_audit

__all__ = ["AuditPlan", "build_plan", "parse_accesses", "plan_audit", "rerender", "run_audit"]
