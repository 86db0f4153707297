"""The organization the verification tests build on: a project with a verified scan target
(the vulnerable lab), a browser test, environment and suite (the browser lab), and pipelines."""

from __future__ import annotations

from bastion.browser import services as browser_services
from bastion.scanning import services as scan_services
from tests.factories import make_project
from tests.jobs.helpers import World
from tests.labs.browser_site.server import LabServer

GATE = """
steps:
  - label: ":shield: scan the lab"
    key: scan
    scan: { target: lab, profile: lightning, fail_on: high }
"""
SOFT = """
steps:
  - key: scan
    scan: { target: lab, fail_on: high }
    soft_fail: true
  - key: smoke
    browser: { suite: smoke, environment: lab }
  - wait
  - key: release
    release: { version: "$BUILDKITE_COMMIT", environment: production, project: shop }
"""
GREET = {
    "name": "greet",
    "start_url": "/form",
    "steps": [
        {"type": "#name", "value": "Ada"},
        {"click": "#go"},
        {"assert_text": "Hello, Ada (r)", "target": "#out"},
    ],
}


def verification_world(vulnerable: str, lab: LabServer) -> World:
    world = World(cluster_name="default")
    project = make_project(world.org, slug="shop")
    target = scan_services.create_target(world.principal, project, name="lab", base_url=vulnerable)
    scan_services.verify_target(world.principal, target)  # loopback is allow-listed
    browser_services.save_test(world.principal, project, GREET)
    browser_services.create_environment(
        world.principal, project, slug="lab", name="Lab", base_url=lab.url
    )
    browser_services.create_suite(world.principal, project, slug="smoke", tests=["greet"])
    return world
