"""Functions triggers: the only modules (with orchestrations) that import azure.functions.

Each module defines one `df.Blueprint`; `function_app.py` registers `BLUEPRINTS`.
"""

from shared.triggers.http_api import bp as http_api

BLUEPRINTS = (http_api,)
