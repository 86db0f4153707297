"""The small exception hierarchy of dispatch; the agent API maps it to HTTP in one place."""

from __future__ import annotations


class DispatchError(Exception):
    """Base class: a request the job table refuses. ``status`` is the HTTP status it maps to."""

    status: int = 400


class InvalidAgentToken(DispatchError):
    """A registration, session or job token that is unknown, expired, revoked or spent."""

    status = 401


class JobNotFound(DispatchError):
    """No such job for this agent or token (other clusters' jobs are reported the same way)."""

    status = 404


class JobConflict(DispatchError):
    """The job is not in a state that allows this (e.g. accept after a cancel)."""

    status = 409


class TooLarge(DispatchError):
    status = 413
