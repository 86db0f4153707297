"""The variables a build's jobs see: ``BASTION_*`` and the Buildkite-compatible ``BUILDKITE_*``.

Build-level variables also feed ``$VAR`` interpolation when the pipeline is read for a build.
They are set by the server from what the build stores and win over the build's, the pipeline's
and the step's env, as Buildkite's own variables cannot be overridden by pipeline configuration;
the ones set only sometimes (``SERVER_ONLY``) are removed from those envs when the server does
not set them. ``BUILDKITE_PULL_REQUEST`` and ``..._BASE_BRANCH`` are read from the build's env,
where the webhook puts them and an API caller may too (Buildkite's API takes ``pull_request_id``).
"""

from __future__ import annotations

from typing import Any

from bastion.pipelines.models import Build, BuildJob
from bastion.pipelines.yaml import CommandStep


def build_variables(build: Build) -> dict[str, str]:
    pipeline = build.pipeline
    org = pipeline.organization.slug
    values = {
        "CI": "true",
        "BUILDKITE": "true",
        "BUILDKITE_ORGANIZATION_SLUG": org,
        "BUILDKITE_PIPELINE_SLUG": pipeline.slug,
        "BUILDKITE_PIPELINE_NAME": pipeline.name,
        "BUILDKITE_PIPELINE_DEFAULT_BRANCH": pipeline.default_branch,
        "BUILDKITE_REPO": pipeline.repository,
        "BUILDKITE_BUILD_ID": str(build.pk),
        "BUILDKITE_BUILD_NUMBER": str(build.number),
        "BUILDKITE_BRANCH": build.branch,
        "BUILDKITE_COMMIT": build.commit,
        "BUILDKITE_MESSAGE": build.message,
        "BUILDKITE_SOURCE": build.source,
        **_people_variables(build),
        **_pull_request_variables(build),
        "BASTION": "true",
        "BASTION_ORGANIZATION": org,
        "BASTION_PIPELINE": pipeline.slug,
        "BASTION_BUILD_ID": str(build.pk),
        "BASTION_BUILD_NUMBER": str(build.number),
        "BASTION_BRANCH": build.branch,
        "BASTION_COMMIT": build.commit,
        "BASTION_MESSAGE": build.message,
    }
    return values


# Server variables that are absent on some builds: a build's, pipeline's or step's env cannot
# set them there either (``BUILDKITE_PULL_REQUEST_DRAFT=true`` on a build of no draft).
SERVER_ONLY = frozenset({"BUILDKITE_PULL_REQUEST_DRAFT", "BUILDKITE_PULL_REQUEST_LABELS"})


def with_build_variables(build: Build, env: dict[str, str]) -> dict[str, str]:
    """``env`` (the build's, pipeline's or step's) under the build's own variables."""
    merged = {k: v for k, v in env.items() if k not in SERVER_ONLY}
    merged.update(build_variables(build))
    return merged


def interpolation_env(build: Build) -> dict[str, str]:
    """What ``$VAR`` in the pipeline file can name: the build's env and its build variables."""
    return with_build_variables(build, {str(k): str(v) for k, v in (build.env or {}).items()})


def condition_context(build: Build) -> dict[str, Any]:
    """Variables of ``if`` conditions (``build.branch``, ``pipeline.slug``, ...)."""
    pipeline = build.pipeline
    return {
        "build.branch": build.branch,
        "build.commit": build.commit,
        "build.message": build.message,
        "build.number": build.number,
        "build.id": str(build.pk),
        "build.source": build.source,
        "build.tag": (build.env or {}).get("BUILDKITE_TAG"),
        # Set by the GitHub / GitLab webhooks on pull (merge) request builds; null otherwise.
        "build.pull_request.id": _pull_request(build.env or {}),
        "build.pull_request.base_branch": (build.env or {}).get(
            "BUILDKITE_PULL_REQUEST_BASE_BRANCH"
        )
        or None,
        "build.env": interpolation_env(build),
        **_people(build),
        **_pull_request_details(
            build.origin or {}, pull_request=bool(_pull_request(build.env or {}))
        ),
        "pipeline.slug": pipeline.slug,
        "pipeline.id": str(pipeline.pk),
        "pipeline.default_branch": pipeline.default_branch,
        "pipeline.repository": pipeline.repository,
        "organization.slug": pipeline.organization.slug,
        "organization.id": str(pipeline.organization_id),
    }


def _pull_request(env: dict[str, Any]) -> str | None:
    number = str(env.get("BUILDKITE_PULL_REQUEST") or "")
    return number if number not in ("", "false") else None


def substitute_matrix(text: str, combo: dict[str, str] | None) -> str:
    if not combo:
        return text
    for name, value in combo.items():
        text = text.replace("{{matrix}}" if name == "" else f"{{{{matrix.{name}}}}}", value)
    return text


def job_variables(
    build: Build, step: CommandStep, build_job: BuildJob, pipeline_env: dict[str, str]
) -> dict[str, str]:
    combo = build_job.matrix if isinstance(build_job.matrix, dict) else None
    env = {str(k): str(v) for k, v in (build.env or {}).items()}
    env.update(pipeline_env)
    env.update({k: substitute_matrix(v, combo) for k, v in step.env.items()})
    env = with_build_variables(build, env)
    label = substitute_matrix(step.label, combo)
    env.update(
        {
            "BUILDKITE_STEP_KEY": step.user_key or "",
            "BUILDKITE_STEP_ID": str(build_job.step_id),
            "BUILDKITE_LABEL": label,
            "BUILDKITE_COMMAND": substitute_matrix(step.command, combo),
            "BUILDKITE_RETRY_COUNT": str(build_job.attempt),
            "BUILDKITE_ARTIFACT_PATHS": ";".join(step.artifact_paths),
            "BASTION_STEP_KEY": step.key,
            "BASTION_BUILD_JOB_ID": str(build_job.pk),
        }
    )
    if step.timeout_in_minutes:
        env["BUILDKITE_TIMEOUT"] = str(step.timeout_in_minutes)
    if step.parallelism:
        env["BUILDKITE_PARALLEL_JOB"] = str(build_job.index)
        env["BUILDKITE_PARALLEL_JOB_COUNT"] = str(step.parallelism)
    return env


def _author(build: Build) -> dict[str, Any]:
    raw = (build.origin or {}).get("author")
    return raw if isinstance(raw, dict) else {}


def _people_variables(build: Build) -> dict[str, str]:
    """``BUILDKITE_BUILD_AUTHOR*``: the commit's author as a webhook said (unverified; its login
    when it gave no name); blank for builds started in the UI or the API, as in Buildkite.
    ``BUILDKITE_BUILD_CREATOR*``: the Bastion user who started the build; on a build of none (a
    webhook's) the commit's author, as Buildkite documents for webhook builds; blank otherwise."""
    author = _author(build)
    author_name = str(author.get("name") or author.get("username") or "")
    author_email = str(author.get("email") or "")
    creator = build.creator
    if creator is not None:
        creator_name, creator_email = creator.get_full_name() or creator.username, creator.email
    else:
        creator_name, creator_email = author_name, author_email
    return {
        "BUILDKITE_BUILD_AUTHOR": author_name,
        "BUILDKITE_BUILD_AUTHOR_EMAIL": author_email,
        "BUILDKITE_BUILD_CREATOR": creator_name,
        "BUILDKITE_BUILD_CREATOR_EMAIL": creator_email or "",
    }


def _pull_request_variables(build: Build) -> dict[str, str]:
    """Buildkite's: ``BUILDKITE_PULL_REQUEST`` is the number or ``false``, ``..._BASE_BRANCH`` and
    ``..._REPO`` are ``""`` on a build of no pull request; ``..._DRAFT`` (``true``) is only set on
    a draft's build and ``..._LABELS`` (comma-separated) only on a pull request's."""
    env = build.env or {}
    number = _pull_request(env)
    if number is None:
        return {
            "BUILDKITE_PULL_REQUEST": "false",
            "BUILDKITE_PULL_REQUEST_BASE_BRANCH": "",
            "BUILDKITE_PULL_REQUEST_REPO": "",
        }
    details = _pull_request_details(build.origin or {}, pull_request=True)
    values = {
        "BUILDKITE_PULL_REQUEST": number,
        "BUILDKITE_PULL_REQUEST_BASE_BRANCH": str(
            env.get("BUILDKITE_PULL_REQUEST_BASE_BRANCH") or ""
        ),
        "BUILDKITE_PULL_REQUEST_REPO": str(details["build.pull_request.repository"] or ""),
        "BUILDKITE_PULL_REQUEST_LABELS": ",".join(details["build.pull_request.labels"]),
    }
    if details["build.pull_request.draft"]:
        values["BUILDKITE_PULL_REQUEST_DRAFT"] = "true"
    return values


def _people(build: Build) -> dict[str, Any]:
    """``build.author.*`` (the commit's author, as a webhook said: unverified) and
    ``build.creator.*`` (the Bastion user who started the build); null when unknown."""
    author = _author(build)
    creator = build.creator
    return {
        "build.author.name": author.get("name") or None,
        "build.author.email": author.get("email") or None,
        "build.author.username": author.get("username") or None,
        "build.creator.id": str(creator.pk) if creator is not None else None,
        "build.creator.name": (creator.get_full_name() or creator.username) if creator else None,
        "build.creator.email": (creator.email or None) if creator is not None else None,
    }


def _pull_request_details(origin: dict[str, Any], pull_request: bool) -> dict[str, Any]:
    """``build.pull_request.draft/labels/repository``: null on builds of no pull request."""
    raw = origin.get("pull_request")
    details: dict[str, Any] = raw if isinstance(raw, dict) else {}
    if not pull_request:
        return dict.fromkeys(
            (
                "build.pull_request.draft",
                "build.pull_request.labels",
                "build.pull_request.repository",
            )
        )
    labels = details.get("labels")
    return {
        "build.pull_request.draft": details.get("draft") is True,
        "build.pull_request.labels": [str(x) for x in labels] if isinstance(labels, list) else [],
        "build.pull_request.repository": details.get("repository") or None,
    }
