#!/bin/sh
# Runs once, on the first start of influxdb:2 (mounted into /docker-entrypoint-initdb.d by
# deploy/compose.yaml), after the image's entrypoint has done `influx setup` from the
# DOCKER_INFLUXDB_INIT_* variables and configured the influx CLI with the admin token.
#
# Maps the InfluxQL database $STRIDEWATCH_INFLUXQL_DB (retention policy "autogen", default) onto
# the initial bucket, so InfluxQL (Grafana's stridewatch-influxql data source, the dashboards)
# and the 1.x /write endpoint work against InfluxDB 2.
set -eu

db="${STRIDEWATCH_INFLUXQL_DB:-stridewatch}"

if influx v1 dbrp list --org "${DOCKER_INFLUXDB_INIT_ORG}" --db "${db}" --hide-headers \
    | grep -q .; then
  echo "init-dbrp: DBRP mapping for database ${db} already exists"
  exit 0
fi

influx v1 dbrp create \
  --org "${DOCKER_INFLUXDB_INIT_ORG}" \
  --bucket-id "${DOCKER_INFLUXDB_INIT_BUCKET_ID}" \
  --db "${db}" \
  --rp autogen \
  --default

echo "init-dbrp: InfluxQL database ${db}/autogen -> bucket ${DOCKER_INFLUXDB_INIT_BUCKET}"
