"""What an attacker is given: white-box access to the weights, or an oracle with an output policy."""

from mirisk.access.oracle import Oracle, OracleRefused, QueryBudgetExhausted
from mirisk.access.policies import OutputPolicy, parse_policy
from mirisk.access.whitebox import WhiteBoxAccess

__all__ = ["Oracle", "OracleRefused", "OutputPolicy", "QueryBudgetExhausted", "WhiteBoxAccess", "parse_policy"]
