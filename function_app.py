"""Entry point the Azure Functions Python worker indexes: one DFApp, registration only.

All logic lives in the `shared` package; `shared.triggers.BLUEPRINTS` registers every function,
each importing its implementation at its first call (the worker indexes the app at every cold start).
"""

import azure.durable_functions as df
import azure.functions as func

from shared.orchestration.replay import read_history_timestamps_fast
from shared.triggers import BLUEPRINTS

read_history_timestamps_fast()  # every episode re-reads the whole history (see `replay`)
app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
for blueprint in BLUEPRINTS:
    app.register_functions(blueprint)
