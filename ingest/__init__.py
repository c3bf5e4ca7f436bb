"""Sensors to typed readings: GATT codecs, the BLE collector, virtual sensors, file replay."""
