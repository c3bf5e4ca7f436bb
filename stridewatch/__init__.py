"""stridewatch: the application (CLI, configuration, wiring of sources, processing and outputs)."""

__version__ = "0.1.0"
