"""The scanner's exception hierarchy.

The HTTP layer (:mod:`bastion.scanning.engine.http`) translates every httpx, httpcore, ``ssl``
and socket error into one of these, with ``raise ... from exc``; checks catch only these.

``EngineError``
  ``TargetError``           something about the target stopped one request
    ``TargetTimeout``       connect/read/write/pool timeout (per-request budget)
    ``TargetUnreachable``   DNS failure, connection refused or reset, protocol garbage
    ``TargetTLSError``      TLS handshake or certificate failure
    ``ResponseTooLarge``    body larger than the configured bound (only when asked to fail)
    ``TooManyRedirects``    redirect chain longer than allowed, or a loop
  ``PolicyViolation``       the request was refused before any traffic left
    ``AddressNotAllowed``   host resolves to a link-local, metadata, private... address
    ``OutOfScope``          URL outside the scan scope (include/exclude rules)
  ``ScanLimitReached``      a scan-wide budget is spent
    ``RequestBudgetExhausted``
    ``TimeBudgetExhausted``
"""

from __future__ import annotations


class EngineError(Exception):
    """Base of every error the scan engine raises on purpose."""


class TargetError(EngineError):
    """A request to the target failed."""


class TargetTimeout(TargetError):
    """The target did not answer within the per-request timeout."""


class TargetUnreachable(TargetError):
    """The target could not be reached or spoke something that is not HTTP."""


class TargetTLSError(TargetError):
    """The TLS handshake failed."""


class ResponseTooLarge(TargetError):
    """The response body exceeded the configured bound."""


class TooManyRedirects(TargetError):
    """The redirect chain was too long or looped."""


class PolicyViolation(EngineError):
    """The engine refused to send a request; nothing left the machine."""


class AddressNotAllowed(PolicyViolation):
    """The host is, or resolves to, an address the address policy refuses."""


class OutOfScope(PolicyViolation):
    """The URL is outside the scan's scope."""


class ScanLimitReached(EngineError):
    """A scan-wide budget is spent; no more requests are sent."""


class RequestBudgetExhausted(ScanLimitReached):
    """The scan sent as many requests as its profile allows."""


class TimeBudgetExhausted(ScanLimitReached):
    """The scan's overall time budget ran out."""
