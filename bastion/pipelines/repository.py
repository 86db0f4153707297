"""A pipeline's repository: what its command jobs check out, and the pipeline read from it.

When a pipeline has a repository, each command job's payload carries ``checkout`` (repository,
branch, commit) and the agent checks the build's commit out into the job's fresh working
directory (``bastion.agent.checkout``) before running the command. A pipeline whose steps live in
the repository stores only the upload step, as Buildkite's default pipeline does: it runs
``bastion pipeline upload``, which reads ``.bastion/pipeline.yml`` or ``.buildkite/pipeline.yml``
from the checkout and adds its steps to the build.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError

if TYPE_CHECKING:  # the agent imports this module without Django's models
    from bastion.pipelines.models import Build

UPLOAD_YAML = """steps:
  - label: ":pipeline: Upload the pipeline from the repository"
    key: pipeline-upload
    command: bastion pipeline upload
"""

# git's "<transport>::<address>" form runs helpers (ext:: runs any command): never accepted.
_TRANSPORT_HELPER = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*::")
_SCHEMES = ("https://", "http://", "ssh://", "git://", "file://")
_SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]+$")


def repository_problem(url: str) -> str | None:
    """Why ``url`` is not a repository address the agent will fetch, or None when it is."""
    if not url:
        return None
    if len(url) > 500 or any(ch.isspace() or ord(ch) < 32 for ch in url):
        return "A repository address has no spaces or control characters."
    if url.startswith("-") or _TRANSPORT_HELPER.match(url):
        return "Use an https://, ssh://, git:// or file:// URL, user@host:path, or a local path."
    if url.startswith(_SCHEMES) or url.startswith("/") or _SCP_LIKE.match(url):
        return None
    return "Use an https://, ssh://, git:// or file:// URL, user@host:path, or a local path."


def check_repository(url: str) -> str:
    url = url.strip()
    problem = repository_problem(url)
    if problem is not None:
        raise ValidationError({"repository": [problem]})
    return url


def checkout_payload(build: Build) -> dict[str, Any] | None:
    """What the agent checks out for a job of ``build`` (None when the pipeline has no repo)."""
    repository = build.pipeline.repository
    if not repository:
        return None
    return {"repository": repository, "branch": build.branch, "commit": build.commit}
