"""WSGI entry point for a throw-away test Keystone served by gunicorn.

Keystone's app parses the process's command line with oslo.config at import
time and would choke on gunicorn's own flags, so the command line is emptied
before the import. The configuration comes from OS_KEYSTONE_CONFIG_FILES.
"""
import sys

sys.argv = sys.argv[:1]

from keystone.wsgi.api import application  # noqa: E402,F401
