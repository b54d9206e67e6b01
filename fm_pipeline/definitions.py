"""The one Definitions object: everything under `fm_pipeline/defs/`, with resources bound and the executor
chosen by `FM_PIPELINE_EXECUTOR` (see `fm_pipeline.defs.executors`)."""

import dagster as dg

import fm_pipeline.defs
from fm_pipeline.defs.executors import executor_from_env
from fm_pipeline.defs.fanout import FANOUT_IO, LakeJsonIOManager
from fm_pipeline.defs.resources import LakeResource, MlflowTracking

defs = dg.Definitions.merge(
    dg.load_defs(fm_pipeline.defs),
    dg.Definitions(resources={"lake": LakeResource(), "mlflow_tracking": MlflowTracking(),
                              FANOUT_IO: LakeJsonIOManager()},
                   executor=executor_from_env()),
)
