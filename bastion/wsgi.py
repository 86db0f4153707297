"""WSGI entry point used by the production server started by ``bastion up``."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bastion.settings")
application = get_wsgi_application()

# A server process advances builds in a background thread, off the agents' finish requests.
from bastion.pipelines import advancer  # noqa: E402

advancer.enable()
