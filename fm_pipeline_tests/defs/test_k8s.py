"""Scaling out without a cluster: the Kubernetes configuration in deploy/k8s/ validates against dagster-k8s's
schemas, and the pod that the step executor would create for each step is built exactly as dagster-k8s builds
it (run launcher settings, executor config, the op's `dagster-k8s/config` tag, per-step overrides), so the
GPU requests of the training op and the lake volume of every step are checked for real."""

import base64
import importlib
import zlib
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.execution.api import create_execution_plan
from dagster._core.execution.plan.state import KnownExecutionState
from dagster._grpc.types import ExecuteStepArgs
from dagster._serdes import deserialize_value
from dagster._utils.merger import deep_merge_dicts

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
pytest.importorskip("dagster_k8s", reason="the k8s extra: pip install 'fm-pipeline[k8s]'")

from dagster_k8s import K8sRunLauncher, k8s_job_executor  # noqa: E402
from dagster_k8s.container_context import K8sContainerContext  # noqa: E402
from dagster_k8s.job import (  # noqa: E402
    UserDefinedDagsterK8sConfig,
    construct_dagster_k8s_job,
    get_k8s_job_name,
    get_user_defined_k8s_config,
)

from fm_pipeline.defs.executors import CODE_LOCATION, executor_from_env, multiprocess_forkserver  # noqa: E402

KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: none, user: {token: not-a-real-token}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
"""


def _yaml(name: str) -> dict[str, Any]:
    return yaml.safe_load((K8S / name).read_text())


@pytest.fixture(scope="module")
def k8s_defs():
    """The project's Definitions as the user code deployment loads them with FM_PIPELINE_EXECUTOR=k8s."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FM_PIPELINE_EXECUTOR", "k8s")
        import fm_pipeline.definitions

        module = importlib.reload(fm_pipeline.definitions)
        yield module.defs
    importlib.reload(fm_pipeline.definitions)


@pytest.fixture(scope="module")
def launcher(tmp_path_factory) -> K8sRunLauncher:
    """The run launcher of deploy/k8s/dagster.yaml, pointed at a kubeconfig that is parsed but never used."""
    kubeconfig = tmp_path_factory.mktemp("kube") / "config"
    kubeconfig.write_text(KUBECONFIG)
    config = {**_yaml("dagster.yaml")["run_launcher"]["config"], "load_incluster_config": False,
              "kubeconfig_file": str(kubeconfig)}
    return K8sRunLauncher(**config)


def test_executor_is_chosen_by_environment(k8s_defs):
    assert executor_from_env("k8s") is k8s_job_executor
    assert executor_from_env("in_process") is dg.in_process_executor
    assert executor_from_env("multiprocess") is multiprocess_forkserver
    with pytest.raises(ValueError, match="FM_PIPELINE_EXECUTOR='slurm'"):
        executor_from_env("slurm")
    assert k8s_defs.resolve_implicit_global_asset_job_def().executor_def is k8s_job_executor


def test_steps_fork_from_a_server_that_preloaded_the_code_location():
    """The default multiprocess executor forks steps from a forkserver that imported the code location once;
    whatever a run config sets explicitly (a spawn start, a concurrency limit) wins."""
    def resolved(config: dict) -> dict:
        return multiprocess_forkserver.config_schema.resolve_config({"config": config}).value["config"]

    assert resolved({})["start_method"] == {"forkserver": {"preload_modules": [CODE_LOCATION]}}
    assert resolved({"max_concurrent": 2, "start_method": {"spawn": {}}}) | {"retries": None} == {
        "max_concurrent": 2, "start_method": {"spawn": {}}, "retries": None}
    assert multiprocess_forkserver.name == "multiprocess"


def test_instance_config_validates(launcher):
    from dagster._config import validate_config
    from dagster._core.instance.config import dagster_instance_config

    config, custom = dagster_instance_config(str(K8S), "dagster.yaml")
    assert custom is None and config["run_launcher"]["class"] == "K8sRunLauncher"
    result = validate_config(K8sRunLauncher.config_type(), _yaml("dagster.yaml")["run_launcher"]["config"])
    assert result.success, [e.message for e in result.errors]
    assert launcher.job_namespace == "fm-pipeline" and launcher.instance_config_map == "fm-pipeline-instance"


def _job(defs: dg.Definitions, asset: str) -> dg.JobDefinition:
    return defs.resolve_implicit_global_asset_job_def().get_subset(asset_selection={dg.AssetKey(asset)})


def test_run_configs_validate_against_the_k8s_executor(k8s_defs):
    single = _yaml("run_config.yaml")
    multi = deep_merge_dicts(single, _yaml("pretraining_multi_gpu.yaml"))
    for asset, config in (("raw_corpus", single), ("pretrained_checkpoint", single), ("pretrained_checkpoint", multi)):
        result = dg.validate_run_config(_job(k8s_defs, asset), config)
        assert result["execution"]["k8s"]["job_namespace"] == "fm-pipeline"
    resolved = dg.validate_run_config(_job(k8s_defs, "pretrained_checkpoint"), multi)
    assert resolved["ops"]["pretrained_checkpoint.prepare_pretraining"]["config"]["devices"] == 8
    typo = deep_merge_dicts(single, {"execution": {"config": {"step_k8s_confg": {}}}})
    with pytest.raises(dg.DagsterInvalidConfigError, match="step_k8s_confg"):
        dg.validate_run_config(_job(k8s_defs, "raw_corpus"), typo)


def _step_pod(defs: dg.Definitions, launcher: K8sRunLauncher, asset: str, op_path: list[str],
              run_config: dict[str, Any], step: ExecuteStepArgs | None = None):
    """The Kubernetes Job that `k8s_job_executor` launches for one step, merged in K8sStepHandler's order: run
    launcher, executor config, the op's `dagster-k8s/config` tag, then `per_step_k8s_config[op name]`."""
    job = _job(defs, asset)
    executor = dg.validate_run_config(job, run_config)["execution"]["k8s"]
    node = job.graph.node_named(op_path[0]).definition
    for name in op_path[1:]:
        node = node.node_named(name).definition
    context = K8sContainerContext(
        image_pull_policy=executor.get("image_pull_policy"), service_account_name=executor.get("service_account_name"),
        env_config_maps=executor.get("env_config_maps"), env_secrets=executor.get("env_secrets"),
        volume_mounts=executor.get("volume_mounts"), volumes=executor.get("volumes"),
        namespace=executor.get("job_namespace"),
        run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(executor.get("step_k8s_config", {})),
    )
    context = K8sContainerContext(
        image_pull_policy=launcher.image_pull_policy, service_account_name=launcher.service_account_name,
        env_config_maps=launcher.env_config_maps, env_secrets=launcher.env_secrets,
        volume_mounts=launcher.volume_mounts, volumes=launcher.volumes, namespace=launcher.job_namespace,
    ).merge(context)
    context = context.merge(K8sContainerContext(run_k8s_config=get_user_defined_k8s_config(node.tags))).merge(
        K8sContainerContext(run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(
            executor.get("per_step_k8s_config", {}).get(node.name, {}))))
    job_config = context.get_k8s_job_config("fm-pipeline:latest", launcher)
    if step is None:
        return context.namespace, construct_dagster_k8s_job(
            job_config=job_config, args=["dagster", "api", "execute_step"], job_name="dagster-step-test",
            pod_name="dagster-step-test", component="step_worker", user_defined_k8s_config=context.run_k8s_config)
    (step_key,) = step.step_keys_to_execute
    name = f"dagster-step-{get_k8s_job_name(step.run_id, step_key)}"  # as K8sStepHandler names a step's Job
    return context.namespace, construct_dagster_k8s_job(
        job_config=job_config, args=step.get_command_args(skip_serialized_namedtuple=True), job_name=name,
        pod_name=name, component="step_worker", user_defined_k8s_config=context.run_k8s_config,
        labels={"dagster/op": step_key, "dagster/run-id": step.run_id},
        env_vars=[*step.get_command_env(), {"name": "DAGSTER_RUN_STEP_KEY", "value": step_key}])


def test_training_step_pod_requests_its_gpus_and_every_step_mounts_the_lake(k8s_defs, launcher):
    single = _yaml("run_config.yaml")
    multi = deep_merge_dicts(single, _yaml("pretraining_multi_gpu.yaml"))
    cases = {
        "corpus step": ("raw_corpus", ["raw_corpus"], single),
        "training, one GPU": ("pretrained_checkpoint", ["pretrained_checkpoint", "train_model"], single),
        "training, eight GPUs": ("pretrained_checkpoint", ["pretrained_checkpoint", "train_model"], multi),
        "evaluation step": ("pretrained_checkpoint", ["pretrained_checkpoint", "evaluate_model"], multi),
    }
    pods = {name: _step_pod(k8s_defs, launcher, *case) for name, case in cases.items()}
    for name, (namespace, job) in pods.items():
        pod = job.spec.template.spec
        (container,) = pod.containers
        assert namespace == "fm-pipeline", name
        assert ("lake", "/opt/fm_pipeline/data") in [(m.name, m.mount_path) for m in container.volume_mounts], name
        assert {"fm-pipeline-env"} <= {e.config_map_ref.name for e in container.env_from if e.config_map_ref}, name
        assert container.image == "fm-pipeline:latest"
    gpus = {name: (job.spec.template.spec.containers[0].resources.limits or {}).get("nvidia.com/gpu")
            for name, (_, job) in pods.items()}
    assert gpus == {"corpus step": None, "training, one GPU": "1", "training, eight GPUs": "8",
                    "evaluation step": None}
    corpus = pods["corpus step"][1].spec.template.spec.containers[0].resources
    assert corpus.requests == {"cpu": "2", "memory": "8Gi"}
    eight = pods["training, eight GPUs"][1].spec.template.spec
    assert eight.containers[0].resources.requests["nvidia.com/gpu"] == "8"
    assert ("dshm", "/dev/shm") in [(m.name, m.mount_path) for m in eight.containers[0].volume_mounts]
    assert eight.node_selector == {"nvidia.com/gpu.count": "8"}
    one = pods["training, one GPU"][1].spec.template.spec
    assert [t.key for t in one.tolerations] == ["nvidia.com/gpu"]


def test_a_fanned_out_run_puts_each_shard_group_in_its_own_pod(k8s_defs, launcher):
    """filtered_corpus[common_crawl] planned into three groups: the plan step, once its dynamic outputs are
    known, resolves into one step per group, and each of those steps is its own Kubernetes Job (one pod) whose
    `dagster api execute_step` arguments name that step alone."""
    groups = ["group_00000", "group_00001", "group_00002"]
    known = KnownExecutionState(dynamic_mappings={"filtered_corpus.plan_filtered_corpus": {"items": groups}})
    run_config = deep_merge_dicts(_yaml("run_config.yaml"),
                                  {"ops": {"filtered_corpus": {"config": {"max_steps": 3}}}})
    plan = create_execution_plan(_job(k8s_defs, "filtered_corpus"), run_config=run_config,
                                 tags={"dagster/partition": "common_crawl"}, known_state=known)
    steps = [s.key for s in plan.get_all_steps_in_topo_order() if "[?]" not in s.key]
    group_steps = [f"filtered_corpus.filter_shard_group[{g}]" for g in groups]
    assert steps == ["filtered_corpus.plan_filtered_corpus", *group_steps, "filtered_corpus.publish_filtered_corpus"]
    origin = ReconstructableRepository.for_module("fm_pipeline.definitions", "defs", str(REPO)).get_reconstructable_job(
        "__ASSET_JOB").get_python_origin()
    pods = {}
    for key in steps:
        args = ExecuteStepArgs(job_origin=origin, run_id="fanout-run", step_keys_to_execute=[key], instance_ref=None,
                               known_state=known)
        op = key.split(".")[1].split("[")[0]
        pods[key] = _step_pod(k8s_defs, launcher, "filtered_corpus", ["filtered_corpus", op], run_config, args)[1]
    assert len({job.metadata.name for job in pods.values()}) == len(steps) == 5, "one Job per step"
    assert len({job.metadata.labels["dagster/op"] for job in pods.values()}) == 5
    for key, job in pods.items():
        (container,) = job.spec.template.spec.containers
        env = {e.name: e.value for e in container.env if e.value is not None}
        packed = env["DAGSTER_COMPRESSED_EXECUTE_STEP_ARGS"]
        sent = deserialize_value(zlib.decompress(base64.b64decode(packed)).decode(), ExecuteStepArgs)
        assert sent.step_keys_to_execute == [key] and env["DAGSTER_RUN_STEP_KEY"] == key
        assert container.args == ["dagster", "api", "execute_step"]
        assert ("lake", "/opt/fm_pipeline/data") in [(m.name, m.mount_path) for m in container.volume_mounts]
        assert container.resources.requests == {"cpu": "2", "memory": "8Gi"}, "each group pod gets a step's CPUs"
