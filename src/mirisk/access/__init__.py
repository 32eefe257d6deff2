"""What an attacker is given: white-box access to the weights, or an oracle (with an output
policy and a budget) of an image classifier, a segmentation model or a tabular model."""

from mirisk.access.oracle import Oracle, OracleRefused, QueryBudgetExhausted
from mirisk.access.policies import OutputPolicy, parse_policy
from mirisk.access.segmentation import SegmentationOracle
from mirisk.access.tabular import TabularOracle
from mirisk.access.whitebox import WhiteBoxAccess

__all__ = ["Oracle", "OracleRefused", "OutputPolicy", "QueryBudgetExhausted", "SegmentationOracle", "TabularOracle",
           "WhiteBoxAccess", "parse_policy"]
