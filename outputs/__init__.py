"""Outputs of the pipeline: the session store (SQLite outbox), InfluxDB, MQTT and console."""
