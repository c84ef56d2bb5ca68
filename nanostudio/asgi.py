from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

from nanostudio.dirs import make_var_folders

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nanostudio.settings")
make_var_folders()
application = get_asgi_application()
