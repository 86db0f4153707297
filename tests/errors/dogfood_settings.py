"""Settings of the dogfood test's server process: the real settings, plus one route that
raises (``tests.errors.dogfood_urls``)."""

from bastion.settings import *  # noqa: F403

ROOT_URLCONF = "tests.errors.dogfood_urls"
