"""The virtual athlete's time grid: the sampling step and the numpy array types of a trace.

Every array of a simulated session (speed, cadence, heart rate, …) is sampled on one regular
grid of :data:`DT_S`. The kinematics, the heart model and the ground truth all index that grid,
so its step lives here, below all of them, rather than in :mod:`ingest.virtual.athlete`, which
imports them (the import-linter contracts forbid cycles between sibling modules).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.intp]

DT_S: Final = 0.25
"""Sampling step of the trace (s): 4 Hz is finer than any sensor reports (HR ~1 Hz, RSC ~2 Hz)
and fine enough to resolve a sprint start (τ ≈ 1.3 s)."""
