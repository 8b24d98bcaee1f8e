"""aebench: a reproducible benchmark of structured-representation autoencoders.

Telemetry of the tools underneath is off unless the user turns it on: these machines are
often offline, and a benchmark should not phone home.
"""

import os

for _key, _value in {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "GX_ANALYTICS_ENABLED": "False",
    "DVC_NO_ANALYTICS": "1",
    "DO_NOT_TRACK": "1",
    # fail fast against an unreachable tracking server instead of retrying for minutes
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}.items():
    os.environ.setdefault(_key, _value)

__version__ = "0.1.0"
