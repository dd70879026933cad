"""The signature doctor: why a signature does not verify, named by really finding the mistake.

One module per kind of signature: :mod:`.token` for the B2B token request's SHA256withRSA
(``client_key|timestamp``), :mod:`.service` for service calls (HMAC-SHA512 or SHA256withRSA over
``METHOD:EndpointUrl[:AccessToken]:sha256(body):timestamp``) and Ifortepay's notifications. Both
return the same :class:`Diagnosis`.
"""

from __future__ import annotations

from .service import SERVICE_CAUSES, diagnose_notification, diagnose_service
from .token import CAUSES, Diagnosis, diagnose, diagnose_request

__all__ = [
    "CAUSES",
    "SERVICE_CAUSES",
    "Diagnosis",
    "diagnose",
    "diagnose_notification",
    "diagnose_request",
    "diagnose_service",
]
