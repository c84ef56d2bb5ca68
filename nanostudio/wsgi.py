from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

from nanostudio.dirs import make_var_folders

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nanostudio.settings")
make_var_folders()
application = get_wsgi_application()
