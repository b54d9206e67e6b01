#!/bin/bash
# Creates the MLflow tracking database beside the Dagster one. The postgres image runs this from
# /docker-entrypoint-initdb.d only when it initialises an empty data volume; on an existing volume, run
#   docker compose exec postgres psql -U "$POSTGRES_USER" -d "$POSTGRES_DB" -c 'CREATE DATABASE mlflow'
set -eo pipefail

MLFLOW_DB="${MLFLOW_DB:-mlflow}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -v mlflow_db="$MLFLOW_DB" <<-'EOSQL'
	SELECT format('CREATE DATABASE %I OWNER %I', :'mlflow_db', current_user)
	WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'mlflow_db')
	\gexec
EOSQL
