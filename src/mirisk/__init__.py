"""mirisk: measure and reduce how much trained models leak about their training data
through model inversion.

The public face: :func:`audit` (the ``mirisk audit`` command as one call), :func:`load_model`
and :class:`ImageClassifier` (a torch module in, an auditable target out), the report it
returns, the threat-model types, the query door (:class:`Oracle` under an output policy)
and the face attacks. Everything else is reachable in its module, without a promise."""

__version__ = "0.1.0"

from mirisk.access.oracle import Oracle  # noqa: E402
from mirisk.access.policies import parse_policy  # noqa: E402
from mirisk.api import ImageClassifier, audit, load_model  # noqa: E402
from mirisk.attacks.blackbox import ScoreBlackBox  # noqa: E402
from mirisk.attacks.labelonly import BoundaryRepulsion  # noqa: E402
from mirisk.attacks.miface import MIFace  # noqa: E402
from mirisk.audit.run import AuditReport  # noqa: E402
from mirisk.errors import MiriskError  # noqa: E402
from mirisk.threats import AccessLevel, ThreatModel  # noqa: E402

__all__ = ["AccessLevel", "AuditReport", "BoundaryRepulsion", "ImageClassifier", "MIFace", "MiriskError", "Oracle",
           "ScoreBlackBox", "ThreatModel", "__version__", "audit", "load_model", "parse_policy"]
