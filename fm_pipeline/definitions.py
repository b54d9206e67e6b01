"""The one Definitions object: everything under `fm_pipeline/defs/`, with resources bound."""

import dagster as dg

import fm_pipeline.defs
from fm_pipeline.defs.resources import LakeResource, MlflowTracking

defs = dg.Definitions.merge(
    dg.load_defs(fm_pipeline.defs),
    dg.Definitions(resources={"lake": LakeResource(), "mlflow_tracking": MlflowTracking()}),
)
