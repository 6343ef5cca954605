"""Functions triggers: with the orchestration blueprint, the only importers of azure.functions.

`functions` registers every trigger on one `df.Blueprint`; `function_app.py` registers `BLUEPRINTS`.
The trigger modules (event_grid, http_api, exemptions, resync, verify, rotate) hold what each
function does, imported at its first call.
"""

from shared.orchestration.functions import bp as orchestrations
from shared.triggers.functions import bp as triggers

BLUEPRINTS = (orchestrations, triggers)
