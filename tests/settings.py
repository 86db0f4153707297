"""Settings for the test suite: the real settings, with a private data folder per process."""

import os
import tempfile

os.environ.setdefault("BASTION_DATA_DIR", tempfile.mkdtemp(prefix="bastion-test-"))

from bastion.settings import *  # noqa: F403

# Tasks run inline in tests so that effects are visible when the action returns; the database
# backend itself is exercised by tests that override this.
TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Argon2 is the production hasher (a test checks it); tests that create many users use a cheap one.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.MD5PasswordHasher",
]

# Several test processes may share one PostgreSQL server: each gets its own test database.
if DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":  # noqa: F405
    DATABASES["default"]["TEST"]["NAME"] = f"test_bastion_{os.getpid()}"  # noqa: F405
else:
    # A file, not the in-memory default: live-server tests then see the server's writes the way
    # a deployment does (committed transactions through separate connections), instead of
    # sharing one in-memory connection with the server thread, which showed half-done work
    # and "table is locked" errors. pytest-xdist adds a suffix per worker.
    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": os.path.join(os.environ["BASTION_DATA_DIR"], "test.sqlite3")
    }
    # Each test's database is thrown away: WAL's NORMAL sync skips an fsync per commit.
    DATABASES["default"]["OPTIONS"]["init_command"] = DATABASES["default"]["OPTIONS"][  # noqa: F405
        "init_command"
    ].replace("synchronous=FULL", "synchronous=NORMAL")
