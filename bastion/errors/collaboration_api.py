"""Comments on issues over /api/v1/ (assignment is a PATCH of the issue, in ``api``). Reads
through ``bastion.errors.access``; writes through ``bastion.errors.collaboration``."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router
from ninja.responses import Status

from bastion.core.api import READ_ERRORS, WRITE_ERRORS, principal_of
from bastion.errors import access, collaboration
from bastion.errors.schemas import CommentIn, CommentOut

router = Router(tags=["errors"])
PROJECT = "/organizations/{org}/projects/{project}"
MAX_COMMENTS = 500


@router.get(
    PROJECT + "/issues/{issue_id}/comments", response={200: list[CommentOut], **READ_ERRORS}
)
def list_comments(request: HttpRequest, org: str, project: str, issue_id: int) -> list[CommentOut]:
    principal = principal_of(request)
    issue = access.get_issue_for(principal, org, project, issue_id)
    return [CommentOut.of(c) for c in access.comments_for(principal, issue)[:MAX_COMMENTS]]


@router.post(PROJECT + "/issues/{issue_id}/comments", response={201: CommentOut, **WRITE_ERRORS})
def add_comment(
    request: HttpRequest, org: str, project: str, issue_id: int, data: CommentIn
) -> Status[CommentOut]:
    principal = principal_of(request)
    issue = access.get_issue_for(principal, org, project, issue_id)
    return Status(201, CommentOut.of(collaboration.add_comment(principal, issue, data.body)))


@router.delete(
    PROJECT + "/issues/{issue_id}/comments/{comment_id}", response={204: None, **WRITE_ERRORS}
)
def delete_comment(
    request: HttpRequest, org: str, project: str, issue_id: int, comment_id: int
) -> Status[None]:
    """Its author or an admin may delete a comment."""
    principal = principal_of(request)
    issue = access.get_issue_for(principal, org, project, issue_id)
    collaboration.delete_comment(principal, access.get_comment_for(principal, issue, comment_id))
    return Status(204, None)
