"""Pure GATT codecs (no I/O, no asyncio) for the characteristics stridewatch uses.

Heart Rate Measurement (HRS 1.0), RSC Measurement and Feature (RSCS 1.0), Battery Level (BAS
1.0), Body Sensor Location (HRS 1.0) and Device Information strings (DIS 1.1). Decoders raise
:class:`ingest.errors.GattDecodeError` with the byte offset; encoders raise
:class:`ingest.errors.GattEncodeError`.
"""

from ingest.gatt import uuids
from ingest.gatt.heart_rate import (
    MAX_RR_IN_20_BYTE_FRAME,
    RR_TICKS_PER_S,
    HeartRateFlag,
    HeartRateMeasurement,
    decode_heart_rate,
    encode_heart_rate,
    seconds_to_ticks,
)
from ingest.gatt.registry import (
    CHARACTERISTICS,
    Characteristic,
    decode_to_json,
    lookup,
    parse_hex,
)
from ingest.gatt.rsc import (
    RscFeature,
    RscFlag,
    RscMeasurement,
    decode_rsc,
    decode_rsc_feature,
    encode_rsc,
    encode_rsc_feature,
)
from ingest.gatt.rsc import names as rsc_feature_names
from ingest.gatt.simple import (
    BodySensorLocation,
    decode_battery_level,
    decode_body_sensor_location,
    decode_string,
    encode_battery_level,
    encode_body_sensor_location,
    encode_string,
)

__all__ = [
    "CHARACTERISTICS",
    "MAX_RR_IN_20_BYTE_FRAME",
    "RR_TICKS_PER_S",
    "BodySensorLocation",
    "Characteristic",
    "HeartRateFlag",
    "HeartRateMeasurement",
    "RscFeature",
    "RscFlag",
    "RscMeasurement",
    "decode_battery_level",
    "decode_body_sensor_location",
    "decode_heart_rate",
    "decode_rsc",
    "decode_rsc_feature",
    "decode_string",
    "decode_to_json",
    "encode_battery_level",
    "encode_body_sensor_location",
    "encode_heart_rate",
    "encode_rsc",
    "encode_rsc_feature",
    "encode_string",
    "lookup",
    "parse_hex",
    "rsc_feature_names",
    "seconds_to_ticks",
    "uuids",
]
