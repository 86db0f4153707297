"""Browser-test objects for the API and web matrices, made through the real actions."""

from __future__ import annotations

from bastion.browser import runs, services
from bastion.core.access import Principal
from bastion.core.models import Project


def browser_world(owner: Principal, project: Project) -> tuple[str, str, int]:
    """A test, a suite holding it and a (queued) run of it; returns their slugs and run id."""
    test = services.save_test(
        owner,
        project,
        {"name": f"{project.slug} smoke", "start_url": "/", "steps": [{"log": "hello"}]},
    )
    suite = services.create_suite(owner, project, slug="smoke", tests=[test.slug])
    run = runs.start_run(owner, project, runs.RunRequest(test=test, video=False))
    return test.slug, suite.slug, run.pk


def browser_environment(owner: Principal, project: Project) -> str:
    """An environment of the project (for the matrices' environment URLs); returns its slug."""
    environment = services.create_environment(
        owner, project, slug="staging", name="Staging", base_url="http://127.0.0.1:9/"
    )
    return environment.slug
