# syntax=docker/dockerfile:1
#
# One image for the whole team deployment (see docker-compose.yml): the user-code gRPC server (default CMD),
# the Dagster webserver and daemon, and the MLflow tracking server all run from it with different commands.
#
#   docker compose build            # or: docker build -t fm-pipeline:latest .

FROM python:3.11-slim

# CPU wheels of torch; pass --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu124 (etc.) for CUDA.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# Optional extras of the package, e.g. --build-arg EXTRAS=k8s for the dagster-k8s step executor.
ARG EXTRAS=
ARG APP_UID=1000
ARG APP_GID=1000

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    FM_PIPELINE_HOME=/opt/fm_pipeline/data \
    DAGSTER_DISABLE_TELEMETRY=true \
    MLFLOW_DISABLE_TELEMETRY=true \
    DO_NOT_TRACK=true

RUN groupadd --gid "${APP_GID}" dagster \
    && useradd --uid "${APP_UID}" --gid dagster --home-dir /opt/dagster --no-create-home \
        --shell /usr/sbin/nologin dagster

WORKDIR /opt/fm_pipeline

# Dependencies first, in their own layer, so that editing the code does not reinstall torch and friends:
# install the project from a stub package, then drop the stub and keep the dependencies.
COPY pyproject.toml constraints.txt README.md ./
RUN mkdir fm_pipeline \
    && touch fm_pipeline/__init__.py \
    && pip install --extra-index-url "${TORCH_INDEX_URL}" -c constraints.txt ".${EXTRAS:+[${EXTRAS}]}" \
    && pip uninstall -y fm-pipeline \
    && rm -rf fm_pipeline build ./*.egg-info

COPY fm_pipeline ./fm_pipeline
RUN pip install --no-deps -c constraints.txt . \
    && rm -rf build ./*.egg-info

# Folders that named volumes are mounted on: created here, owned by the runtime user, so that Docker copies
# this ownership into a fresh volume. dagster.yaml and workspace.yaml are bind-mounted into DAGSTER_HOME.
RUN mkdir -p "${DAGSTER_HOME}" /opt/dagster/storage "${FM_PIPELINE_HOME}" /mlflow/artifacts \
    && chown -R dagster:dagster /opt/dagster "${FM_PIPELINE_HOME}" /mlflow

USER dagster

EXPOSE 4000

# The user-code gRPC server for the `fm_pipeline` code location.
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "fm_pipeline.definitions", \
     "--location-name", "fm_pipeline"]
