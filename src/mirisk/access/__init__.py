"""What an attacker is given: white-box access to the weights, or (later) an oracle."""

from mirisk.access.whitebox import WhiteBoxAccess

__all__ = ["WhiteBoxAccess"]
