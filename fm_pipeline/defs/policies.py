"""What every asset of the pipeline shares: groups and owners, retry policies, the `gpu` pool and training
limits, and the automation condition that reruns an asset only for a reason.

Assets import these names rather than repeating literals, so a policy changes in one place.
"""

from __future__ import annotations

import dagster as dg

# Groups, in pipeline order, and who answers for each.
CORPUS = "corpus"
TOKENIZER = "tokenizer"
PRETRAINING = "pretraining"
ADAPTATION = "adaptation"
COMPRESSION = "compression"
GROUPS = (CORPUS, TOKENIZER, PRETRAINING, ADAPTATION, COMPRESSION)
OWNERS: dict[str, list[str]] = {
    CORPUS: ["team:data-curation"],
    TOKENIZER: ["team:data-curation"],
    PRETRAINING: ["team:modeling"],
    ADAPTATION: ["team:modeling"],
    COMPRESSION: ["team:modeling"],
}
KINDS = frozenset({"parquet", "sentencepiece", "pytorch", "mlflow", "numpy"})
"""The kinds assets declare: Parquet shards, the SentencePiece model, PyTorch checkpoints, an MLflow run, and
NumPy token arrays (tokenized_corpus)."""

# Retries with exponential backoff (and jitter, so parallel steps do not retry in lockstep) for steps that can
# fail for passing reasons: a network file system, the MLflow server, a preempted GPU node. Bad data does not
# fail a step (it is quarantined or rejected with a reason), so a retry never hides a data bug.
IO_RETRY = dg.RetryPolicy(max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
TRAINING_RETRY = dg.RetryPolicy(max_retries=2, delay=60, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)

GPU_POOL = "gpu"
"""Training ops claim one slot of this pool; the instance sets its limit to 1 (`make instance`, the compose
daemon), so two training ops never share one GPU, whichever runs they belong to."""

TRAINING_MAX_RUNTIME_S = 12 * 3600
"""The longest a training op may run. The op stops itself (and is not retried) past this; runs launched by
automation also carry Dagster's `dagster/max_runtime` tag, which the daemon's run monitoring enforces."""
MAX_RUNTIME_TAG = "dagster/max_runtime"
WORKLOAD_TAG = "workload"
TRAINING_TAGS = {WORKLOAD_TAG: "training"}
"""Asset tags of the assets that train models (selected by the training automation sensor)."""

GPU_K8S_CONFIG = {
    "container_config": {"resources": {"requests": {"cpu": "4", "memory": "32Gi", "nvidia.com/gpu": "1"},
                                       "limits": {"memory": "64Gi", "nvidia.com/gpu": "1"}}},
    "pod_spec_config": {"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]},
}
"""Op tags for `dagster-k8s`: the step pod of a training op requests one GPU (and tolerates GPU-node taints).
Ignored by every other executor. For several GPUs per pod, see README "Scaling out"."""
TRAINING_OP_TAGS = {"dagster-k8s/config": GPU_K8S_CONFIG}


def _rerun_on_change() -> dg.AutomationCondition:
    """Materialize when there is a reason, and only then: an input's data version changed, the asset's own code
    version changed, or it became missing; never while an input is missing, in progress, about to be requested
    on this tick (wait for its new data version first) or failed a blocking check, nor while it runs itself."""
    reason = (
        dg.AutomationCondition.any_deps_match(dg.AutomationCondition.data_version_changed()).with_label(
            "an input has a new data version")
        | dg.AutomationCondition.code_version_changed().with_label("new code version")
        | dg.AutomationCondition.newly_missing().with_label("newly missing")
    )
    return (
        reason.since_last_handled()
        & ~dg.AutomationCondition.any_deps_missing()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.any_deps_match(dg.AutomationCondition.will_be_requested()).with_label(
            "an input will be rebuilt first")
        & dg.AutomationCondition.all_deps_blocking_checks_passed()
        & ~dg.AutomationCondition.in_progress()
    ).with_label("rerun_on_change")


RERUN_ON_CHANGE = _rerun_on_change()


def stage_graph_args(group: str, kinds: set[str]) -> dict[str, object]:
    """The arguments every stage asset shares, fanned out (`dg.graph_asset`) or not: its group and the team that
    owns it, its kinds and the automation condition that reruns it only for a reason."""
    return {"group_name": group, "owners": OWNERS[group], "kinds": kinds, "automation_condition": RERUN_ON_CHANGE}


def stage_asset_args(group: str, kinds: set[str]) -> dict[str, object]:
    """`stage_graph_args` plus the I/O retry policy, for a stage that is one `dg.asset` step (a graph asset's
    ops carry their own)."""
    return {**stage_graph_args(group, kinds), "retry_policy": IO_RETRY}


def training_asset_args(group: str) -> dict[str, object]:
    """The `dg.asset` arguments every asset that trains a model shares: group, owners and kinds, the training
    tags the automation sensor selects by, its retry policy, one slot of the `gpu` pool and the op's tags."""
    return {"group_name": group, "owners": OWNERS[group], "kinds": {"pytorch", "mlflow"}, "tags": TRAINING_TAGS,
            "automation_condition": RERUN_ON_CHANGE, "retry_policy": TRAINING_RETRY, "pool": GPU_POOL,
            "op_tags": TRAINING_OP_TAGS}
