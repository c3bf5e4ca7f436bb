"""Quix Streams, imported once with a third party's import-time warning silenced.

authlib (>= 1.9.10), which confluent-kafka's schema registry loads when Quix Streams is
imported, warns that its httpx client is deprecated and installs an "always" filter for its
own warning class, so it reaches every `stridewatch worker`'s stderr and no filter of ours can
stop it. We use neither the schema registry nor authlib; importing here inside
``catch_warnings(record=True)`` swallows the warning and drops authlib's filter afterwards.
Import Quix names from here.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings(record=True):
    warnings.simplefilter("ignore", DeprecationWarning)
    from quixstreams import Application
    from quixstreams.models import TopicConfig
    from quixstreams.sinks import BatchingSink, SinkBackpressureError, SinkBatch

__all__ = ["Application", "BatchingSink", "SinkBackpressureError", "SinkBatch", "TopicConfig"]
