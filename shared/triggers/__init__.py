"""Functions triggers: with the orchestration blueprint, the only importers of azure.functions.

Each module defines one `df.Blueprint`; `function_app.py` registers `BLUEPRINTS`.
"""

from shared.orchestration.functions import bp as orchestrations
from shared.triggers.event_grid import bp as event_grid
from shared.triggers.exemptions import bp as exemptions
from shared.triggers.http_api import bp as http_api
from shared.triggers.resync import bp as resync
from shared.triggers.rotate import bp as rotate
from shared.triggers.verify import bp as verify

BLUEPRINTS = (orchestrations, event_grid, http_api, resync, verify, rotate, exemptions)
