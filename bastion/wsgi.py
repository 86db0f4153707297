"""WSGI entry point used by the production server started by ``bastion up``."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bastion.settings")
django_application = get_wsgi_application()

# Sentry SDK posts are answered before Django's request handling (bastion/errors/wsgi_shortcut.py).
from bastion.errors.wsgi_shortcut import IngestShortcut  # noqa: E402

application = IngestShortcut(django_application)

# A server process advances builds in a background thread, off the agents' finish requests.
from bastion.pipelines import advancer  # noqa: E402

advancer.enable()

# ... and stores accepted error events from its ingest journal, replaying any a dead process left.
from bastion.errors.ingest import committer  # noqa: E402

committer.start()
