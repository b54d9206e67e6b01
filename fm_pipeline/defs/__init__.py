"""The Dagster layer: thin assets, checks, jobs, schedules and resources over the library.

Every module here is imported whenever the code location loads (each CLI command, the forkserver the steps fork
from, every Kubernetes step pod), so none imports torch, MLflow or pyplot at the top: the ops that train, log or
plot import them when they run (`fm_pipeline_tests/defs/test_code_location_import.py`)."""
