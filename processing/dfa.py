"""DFA α1: short-term fractal scaling exponent of the RR series.

Definition (Peng et al. 1995, as computed by ``neurokit2.fractal_dfa(rr_ms, scale=range(4, 17))``
with its defaults, which :func:`dfa_alpha1_batch` reproduces and the tests check):

1. ``x``: the clean RR intervals in milliseconds, in beat order (N of them).
2. Profile ``y_k = Σ_{i ≤ k} (x_i − mean(x))`` (integrated, mean removed).
3. For each box size ``s`` in 4..16 beats: boxes of ``s`` beats starting at
   ``0, s//2, 2·(s//2), …`` while the start is ``< N − s`` (50 % overlap; like neurokit2 the
   last possible start ``N − s`` itself is not used).
4. In each box, least-squares straight line (order 1 detrending) against ``0..s−1``; the
   box's variance is the mean squared residual (``np.var`` of the residual, ddof = 0). Boxes
   with variance ≤ 1e-8 ms² (a perfectly linear stretch, e.g. constant quantised RR) are
   left out, as neurokit2 does.
5. ``F(s) = sqrt(mean of the box variances)`` (root mean square fluctuation, q = 2).
6. ``α1`` is the least-squares slope of ``log2 F(s)`` against ``log2 s`` (the base of the
   logarithm does not change the slope).

Interpretation during exercise (Gronwald & Rogers): α1 ≈ 1 at rest and easy effort,
crossing 0.75 near the aerobic threshold and 0.5 near the anaerobic threshold; white noise
gives 0.5, Brownian noise 1.5. It needs about 2 minutes of beats and is very sensitive to
artifacts: it is suppressed when ≥ 3 % of the window's beats are artifacts.

Live policy (:class:`RollingDfa`): beats enter bounded FIFOs in O(1). Each box's variance
depends only on its own intervals, and the window selects, for box size ``s``, the boxes whose
start is congruent to the window's first interval modulo ``s // 2``. So the state is, for each
box size and each residue modulo ``s // 2`` (62 slots in all), the running sum and count of the
variances of the boxes wholly inside the window: boxes enter when their last interval is no
longer the window's last and leave when their first interval leaves, each computed by one
small matrix product, in one batch per recomputation. α1 is read from the 13 slots of the
window's alignment. Running sums are rebuilt exactly from the window whenever as many boxes
have changed as the window holds, so rounding never builds up. Recomputations happen at most
once per ``update_interval_s`` (1 s) of event time, on the beat that crosses the interval, so a
reader calling :meth:`RollingDfa.get` after every beat sees a value at most one second old. The
result equals :func:`dfa_alpha1_batch` on the same window to ~1e-13; the state is a few KB per
athlete whatever the session length (issue #4: ≤ 64 KB).

References:
    Peng, C.-K., Havlin, S., Stanley, H. E. & Goldberger, A. L. (1995). Quantification of
    scaling exponents and crossover phenomena in nonstationary heartbeat time series.
    *Chaos* 5(1), 82–87.

    Gronwald, T., Rogers, B. & Hoos, O. (2020). Fractal correlation properties of heart rate
    variability: a new biomarker for intensity distribution in endurance exercise and
    training prescription? *Frontiers in Physiology* 11, 550572.

    Rogers, B., Giles, D., Draper, N., Hoos, O. & Gronwald, T. (2021). A new detection method
    defining the aerobic threshold for endurance exercise and training prescription based on
    fractal correlation properties of heart rate variability. *Frontiers in Physiology* 11,
    596567.
"""

from __future__ import annotations

import dataclasses
import math
from array import array

import numpy as np
import numpy.typing as npt

from processing.compaction import COMPACT_DIVISOR, COMPACT_MIN, compact
from processing.records import slot_setters
from processing.rr_cleaning import MIN_RR_S

__all__ = [
    "DFA_MAX_ARTIFACT_PCT",
    "DFA_SCALES",
    "DfaResult",
    "RollingDfa",
    "dfa_alpha1_batch",
    "zone_for_alpha1",
]

DFA_SCALES: tuple[int, ...] = tuple(range(4, 17))
"""Box sizes of α1, beats."""
DFA_MAX_ARTIFACT_PCT = 3.0
"""α1 is suppressed when artifacts are at least this share of the window's beats, percent."""
_MIN_BOX_VAR_MS2 = 1e-8  # neurokit2 drops boxes whose residual variance is not above this
_MIN_BEATS = max(DFA_SCALES) + 1  # neurokit2 needs the largest box to be shorter than N

FloatArray = npt.NDArray[np.float64]


def _scale_fluctuation(var: FloatArray) -> float:
    kept = var[var > _MIN_BOX_VAR_MS2]
    if kept.size == 0:
        return math.nan
    return math.sqrt(float(np.mean(kept)))


def _slope(log_scale: FloatArray, log_f: FloatArray) -> float:
    if not np.all(np.isfinite(log_f)):
        return math.nan
    xc = log_scale - log_scale.mean()
    return float(np.dot(xc, log_f - log_f.mean()) / np.dot(xc, xc))


_LOG2_SCALES: FloatArray = np.log2(np.asarray(DFA_SCALES, dtype=np.float64))


def dfa_alpha1_batch(rr_s: npt.ArrayLike) -> float:
    """DFA α1 of an RR series, straight from the definition (one box at a time).

    Args:
        rr_s: clean RR intervals, seconds, in beat order (at least 17).

    Returns:
        α1 (dimensionless); NaN when some box size has no box with variance (a flat series).

    Example:
        >>> rng = np.random.default_rng(1)
        >>> round(dfa_alpha1_batch(0.8 + 0.05 * rng.standard_normal(400)), 2)  # white noise
        0.45
    """
    x = np.asarray(rr_s, dtype=np.float64) * 1000.0
    n = x.size
    if n < _MIN_BEATS:
        raise ValueError(f"DFA α1 needs at least {_MIN_BEATS} beats, got {n}")
    y = np.cumsum(x - x.mean())
    fluctuations = []
    for s in DFA_SCALES:
        t = np.arange(s, dtype=np.float64)
        var = []
        for start in range(0, n - s, s // 2):
            box = y[start : start + s]
            slope, intercept = np.polyfit(t, box, 1)
            var.append(np.var(box - (slope * t + intercept)))
        fluctuations.append(_scale_fluctuation(np.asarray(var)))
    return _slope(_LOG2_SCALES, np.log2(np.asarray(fluctuations)))


def _box_residual_operator() -> tuple[FloatArray, npt.NDArray[np.intp]]:
    """Matrix mapping the last 16 intervals to the detrended profile of every box ending there,
    and where each box size's rows start.

    For a box of ``s`` intervals ``u`` the profile is ``L u`` (``L``: lower-triangular ones,
    a cumulative sum) and the residual of its least-squares line is ``(I − H) L u`` (``H``:
    hat matrix of ``[1, t]``). A constant added to ``u`` (such as the window mean that the
    profile removes) adds a straight line to ``L u`` that ``I − H`` removes, so a box's
    variance depends only on its own intervals: it is the same in every window that holds
    the box. Rows for box size ``s`` act on the last ``s`` of 16 columns.
    """
    width = max(DFA_SCALES)
    blocks = []
    for s in DFA_SCALES:
        t = np.arange(s, dtype=np.float64)
        design = np.column_stack([np.ones(s), t])
        hat = design @ np.linalg.solve(design.T @ design, design.T)
        operator = (np.eye(s) - hat) @ np.tril(np.ones((s, s)))
        block = np.zeros((s, width))
        block[:, width - s :] = operator
        blocks.append(block)
    offsets = np.cumsum([0, *DFA_SCALES[:-1]]).astype(np.intp)
    return np.vstack(blocks), offsets


_BOX_OPERATOR, _BOX_OFFSETS = _box_residual_operator()
_LOG2_CENTRED = _LOG2_SCALES - _LOG2_SCALES.mean()
_LOG2_SXX = float(np.dot(_LOG2_CENTRED, _LOG2_CENTRED))


_SCALES = np.asarray(DFA_SCALES, dtype=np.intp)
_STEPS = _SCALES // 2  # box start step of each size (50 % overlap)
_SLOT_BASE = np.concatenate([[0], np.cumsum(_STEPS)[:-1]]).astype(np.intp)
_N_SLOTS = int(_STEPS.sum())  # one slot per (box size, start residue modulo its step)
_WIDTH = max(DFA_SCALES)
# Per size index: the first start not inside a window ending before index 0, and the offset
# from a box's first interval to the first of the 16 intervals gathered for it.
_SIZE_COLUMN = _SCALES[:, None]
_GATHER_OFFSET = _SIZE_COLUMN - _WIDTH
_SLOT_COLUMN = _SLOT_BASE[:, None]
_STEP_COLUMN = _STEPS[:, None]
# Per box size: (slot base, start step, weight of log2 F(s) in the slope), for α1 in Python.
_ALPHA_TERMS = tuple(
    zip(
        _SLOT_BASE.tolist(),
        _STEPS.tolist(),
        (0.5 * _LOG2_CENTRED / _LOG2_SXX).tolist(),
        strict=True,
    )
)


def _quadratic_forms() -> FloatArray:
    """Per box size ``s``, the 16 × 16 matrix ``Q_s`` with ``var(box) = uᵀ Q_s u`` for the
    16 intervals ``u`` ending at the box (only the last ``s`` enter): ``Q_s = O_sᵀ O_s / s``,
    ``O_s`` the size's rows of the residual operator. One batched product then gives every
    box's variance whatever its size."""
    forms = np.empty((len(DFA_SCALES), _WIDTH, _WIDTH))
    for j, (offset, s) in enumerate(zip(_BOX_OFFSETS.tolist(), DFA_SCALES, strict=True)):
        rows = _BOX_OPERATOR[offset : offset + s]
        forms[j] = rows.T @ rows / s
    return forms


_QUADRATIC = _quadratic_forms()


def _steady_forms() -> FloatArray:
    """The forms of :func:`_quadratic_forms` side by side, as one (16 × 2·13·16) matrix for a
    steady move: first every size's form on the *first* ``s`` of 16 intervals (boxes that
    leave, gathered from their first interval), then on the *last* ``s`` (boxes that enter,
    gathered up to their last interval). ``u @ forms`` then ``Σ_k (u @ forms)[., k] u_k``
    per block of 16 columns (one batched product) gives the variance of every size's box in
    both layouts."""
    first = np.zeros_like(_QUADRATIC)
    for j, s in enumerate(DFA_SCALES):
        first[j, :s, :s] = _QUADRATIC[j, _WIDTH - s :, _WIDTH - s :]
    blocks = [f.transpose(1, 0, 2).reshape(_WIDTH, -1) for f in (first, _QUADRATIC)]
    return np.concatenate(blocks, 1)


_STEADY_FORMS = _steady_forms()
_SIZES = len(DFA_SCALES)
# Box starts repeat their slot with period lcm(2..8) = 840 (the start steps); per start
# residue r (840 + 16 rows, so a move's rows are one slice), each size's slot for a box that
# starts at r (leaving) and for one that ends just before r (entering: start r − s). A steady
# move computes both layouts for every row (2 × 13 variances) and bins all of them: the layout
# a row does not use goes to the spare slot _N_SLOTS, which is dropped, so the used ones are
# binned in the same order as if they had been picked out first.
_SLOT_PERIOD = math.lcm(*_STEPS.tolist())
_PERIOD_ROWS = np.arange(_SLOT_PERIOD + _WIDTH, dtype=np.intp)[:, None]
_SPARE = np.full((_SLOT_PERIOD + _WIDTH, len(DFA_SCALES)), _N_SLOTS, dtype=np.intp)
_SLOTS_FIRST = np.concatenate((_SLOT_BASE + _PERIOD_ROWS % _STEPS, _SPARE), 1)
_SLOTS_LAST = np.concatenate((_SPARE, _SLOT_BASE + (_PERIOD_ROWS - _SCALES) % _STEPS), 1)
# Per row of a steady move, flat (row-major, 2 × 13 a row): leaving rows −1 on their first
# layout, entering rows +1 on their last layout, 0 on the layout not used (spare slot).
_SIGNS = np.concatenate(
    (
        np.tile(np.repeat([-1.0, 0.0], len(DFA_SCALES)), (_WIDTH, 1)),
        np.tile(np.repeat([0.0, 1.0], len(DFA_SCALES)), (_WIDTH, 1)),
    )
).ravel()
_LAYOUTS = 2 * len(DFA_SCALES)  # variances per row of a steady move


_STEADY_LIMIT = 16  # moves of more intervals (pauses, bursts) take the general path
_REBUILD_WINDOWS = 4  # exact rebuild after this many windows' worth of box changes


def zone_for_alpha1(alpha1: float) -> str:
    """Intensity zone of a DFA α1 value (Rogers et al. 2021 thresholds).

    ``"aerobic"`` above 0.75 (below the aerobic threshold), ``"transition"`` from 0.5 to 0.75,
    ``"anaerobic"`` below 0.5 (above the anaerobic threshold).

    Example:
        >>> zone_for_alpha1(1.0), zone_for_alpha1(0.75), zone_for_alpha1(0.5), zone_for_alpha1(0.3)
        ('aerobic', 'transition', 'transition', 'anaerobic')
    """
    if not math.isfinite(alpha1):
        raise ValueError(f"alpha1 must be finite, got {alpha1}")
    if alpha1 > 0.75:
        return "aerobic"
    if alpha1 >= 0.5:
        return "transition"
    return "anaerobic"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DfaResult:
    """The live DFA α1 of the window at the last recomputation."""

    alpha1: float | None
    """DFA α1 (dimensionless), None when suppressed."""
    reason: str | None
    """Why ``alpha1`` is None (artifacts, too few beats, flat signal); None when valid."""
    beats: int
    """Clean beats in the window."""
    artifact_pct: float
    """Artifact beats among all beats in the window, percent."""
    time_s: float | None
    """Event time of the beat at which this value was computed; None before any beat."""


_NO_BEATS = DfaResult(alpha1=None, reason="no beats yet", beats=0, artifact_pct=0.0, time_s=None)
_RESULT_FIELDS = ("alpha1", "reason", "beats", "artifact_pct", "time_s")
assert tuple(f.name for f in dataclasses.fields(DfaResult)) == _RESULT_FIELDS
_new = object.__new__
_set_alpha1, _set_reason, _set_beats, _set_artifact_pct, _set_time = slot_setters(
    DfaResult, *_RESULT_FIELDS
)


class RollingDfa:
    """DFA α1 over the clean beats of the last ``window_s`` seconds of event time.

    Beats flagged as artifacts are left out of the series (the clean beats around them are
    joined) and counted in ``artifact_pct``; α1 is suppressed (None with a reason) when
    ``artifact_pct ≥ 3`` or fewer than ``min_beats`` clean beats are in the window.

    Incremental scheme (see the module docstring): running sums of box variances per box size
    and start residue, updated in one batch per recomputation for the boxes that entered or left
    the window (each computed once on entry and once on exit with one small matrix product), and
    rebuilt exactly every window's worth of changes. Recomputations happen at most once per
    ``update_interval_s`` of event time. State is bounded by ``max_beats``: a few KB.

    Args:
        window_s: window length, seconds (2 minutes, Gronwald & Rogers).
        update_interval_s: α1 is recomputed when at least this much event time has passed
            since the last recomputation (0: on every beat).
        min_beats: fewest clean beats for a value (at least 17, the largest box + 1).
        max_beats: ring-buffer bound; defaults to one beat per 0.25 s of window. When full,
            the oldest beat leaves early.

    Example:
        >>> rng = np.random.default_rng(7)
        >>> dfa = RollingDfa(window_s=120.0)
        >>> t = 0.0
        >>> for rr in 0.6 + 0.02 * rng.standard_normal(300):
        ...     t += rr
        ...     dfa.update(t, rr, artifact=False)
        >>> result = dfa.get()
        >>> round(result.alpha1, 2), result.reason, result.beats, result.artifact_pct
        (0.53, None, 201, 0.0)
        >>> dfa.update(t + 0.6, 0.6, artifact=True)
        >>> for _ in range(6):
        ...     t += 1.2
        ...     dfa.update(t, 1.2, artifact=True)
        >>> dfa.get().reason
        'artifacts 3.6 % >= 3 %'
    """

    def __init__(
        self,
        window_s: float = 120.0,
        *,
        update_interval_s: float = 1.0,
        min_beats: int = 50,
        max_beats: int | None = None,
    ) -> None:
        if not (math.isfinite(window_s) and window_s > 0):
            raise ValueError(f"window_s must be a positive number of seconds, got {window_s}")
        if not update_interval_s >= 0:
            raise ValueError(f"update_interval_s must be >= 0, got {update_interval_s}")
        if min_beats < _MIN_BEATS:
            raise ValueError(f"min_beats must be at least {_MIN_BEATS}, got {min_beats}")
        self._window_s = window_s
        self._interval_s = update_interval_s
        self._min_beats = min_beats
        self._max_beats = max_beats or math.ceil(window_s / MIN_RR_S) + 1
        # The window's beats from index ``_head`` on: event time (s) and 1 clean / 0
        # artifact (see processing.compaction).
        self._times = array("d")
        self._clean = array("b")
        self._head = 0
        self._artifacts = 0
        self._last_time_s = -math.inf
        self._computed_at_s = -math.inf
        self._result = _NO_BEATS
        # Clean intervals (ms) in a ring indexed by the absolute clean index; it also keeps the
        # 16 intervals before the window so boxes that leave can be recomputed.
        self._cap = self._max_beats + 2 * _WIDTH
        # The first 16 slots are mirrored after the end so any 16 consecutive intervals are
        # one row of a sliding-window view (a gather without wrap-around).
        self._x_ms = np.zeros(self._cap + _WIDTH)
        self._x_rows = np.lib.stride_tricks.sliding_window_view(self._x_ms, _WIDTH)
        self._n_total = 0  # clean intervals ever added
        self._first = 0  # absolute index of the oldest clean interval in the window
        # Running sums over the boxes inside the window as of the last sync: box (s, a) — size
        # s, first interval a — is inside when synced_first <= a and a + s < synced_n.
        self._sum = np.zeros(_N_SLOTS)  # Σ box variance, ms²
        self._count = np.zeros(_N_SLOTS)  # boxes with variance above 1e-8 ms²
        self._synced_n = 0
        self._synced_first = 0
        self._changed = 0  # box entries and exits since the last exact rebuild

    def __getstate__(self) -> dict[str, object]:
        """For a snapshot (:mod:`processing.snapshot`): all but ``_x_rows``, a view into
        ``_x_ms`` that pickle would copy as a separate array (the restored α1 then drifted)."""
        state = dict(self.__dict__)
        del state["_x_rows"]
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._x_rows = np.lib.stride_tricks.sliding_window_view(self._x_ms, _WIDTH)

    def update(self, beat_time_s: float, rr_s: float, artifact: bool) -> None:
        """Add one beat (event time in seconds, non-decreasing; interval in seconds).

        A non-finite or non-positive ``rr_s`` is counted as an artifact.
        """
        if not math.isfinite(beat_time_s) or beat_time_s < self._last_time_s:
            raise ValueError(
                f"beat_time_s must be finite and non-decreasing, got {beat_time_s} after "
                f"{self._last_time_s}"
            )
        self._last_time_s = beat_time_s
        clean = not artifact and math.isfinite(rr_s) and rr_s > 0.0
        times, flags = self._times, self._clean
        times.append(beat_time_s)
        flags.append(1 if clean else 0)
        if clean:
            slot = self._n_total % self._cap
            self._x_ms[slot] = rr_s * 1000.0
            if slot < _WIDTH:
                self._x_ms[slot + self._cap] = rr_s * 1000.0
            self._n_total += 1
        else:
            self._artifacts += 1
        horizon = beat_time_s - self._window_s
        limit = len(times) - self._max_beats
        head = self._head
        while head < limit or times[head] <= horizon:  # the newest beat always stays
            if flags[head]:
                self._first += 1
            else:
                self._artifacts -= 1
            head += 1
        if head >= COMPACT_MIN and COMPACT_DIVISOR * head >= len(times):  # compact() is due
            head = compact(head, times, flags)
        self._head = head
        if beat_time_s - self._computed_at_s >= self._interval_s:
            self._computed_at_s = beat_time_s
            self._result = self._compute(beat_time_s)

    def _rebuild(self) -> None:
        """Recompute the running sums from scratch over the boxes of the current window."""
        self._sum[:] = 0.0
        self._count[:] = 0.0
        self._changed = 0
        self._move(self._first, self._first, self._first, self._n_total)

    def _sync(self) -> None:
        """Bring the running sums from the last synced window to the current one."""
        n0, f0 = self._synced_n, self._synced_first
        n1, f1 = self._n_total, self._first
        # Boxes leaving need their intervals from f0 on: rebuild if the ring overwrote them,
        # and every few windows' worth of changes so rounding in the sums stays negligible.
        limit = _REBUILD_WINDOWS * len(DFA_SCALES) * max(n1 - f1, 64)
        if n1 - f0 + _WIDTH > self._cap or self._changed >= limit:
            self._rebuild()
        elif f1 + _WIDTH <= n0 and f1 - f0 < _STEADY_LIMIT and n1 - n0 < _STEADY_LIMIT:
            self._steady(f0, n0, f1, n1)
        elif n1 != n0 or f1 != f0:
            self._move(f0, n0, f1, n1)

    def _rows(self, first: int, count: int) -> FloatArray:
        """The ``count`` rows of 16 intervals from absolute interval ``first`` on (each row
        starting one interval later): a slice of the ring unless it wraps."""
        r = first % self._cap
        if r + count <= len(self._x_rows):
            return self._x_rows[r : r + count]
        return self._x_rows[(first + np.arange(count, dtype=np.intp)) % self._cap]

    def _steady(self, f0: int, n0: int, f1: int, n1: int) -> None:
        """Update the sums for a steady move: ``df = f1 − f0`` intervals leave and
        ``dn = n1 − n0`` enter (each < 16), the new window starting at least 16 intervals
        before the old one's end (``f1 + 16 <= n0``). Every box starting at
        ``f0 .. f1 − 1`` leaves and every box ending at ``n0 − 1 .. n1 − 2`` enters, whatever
        its size, so the leaving boxes of all sizes share one row of 16 intervals (from their
        first one), the entering ones too (up to their last one): ``df + dn`` rows, against
        13 × that in :meth:`_apply`, and their slots are slices of a table."""
        df, dn = f1 - f0, n1 - n0
        if df == 0 and dn == 0:
            return
        m = df + dn
        rows = np.concatenate((self._rows(f0, df), self._rows(n0 - _WIDTH, dn)))
        u = rows - self._x_ms[(n1 - 1) % self._cap]  # a constant shift leaves boxes unchanged
        forms = np.matmul(u, _STEADY_FORMS).reshape(m, _LAYOUTS, _WIDTH)
        # (m rows × 2·13 layouts and sizes × 1), flat: leaving rows use their first 13,
        # entering rows their last 13; the others go to the spare slot.
        var = np.matmul(forms, u[:, :, None]).reshape(m * _LAYOUTS)
        lo, hi = f0 % _SLOT_PERIOD, n0 % _SLOT_PERIOD
        slots = np.concatenate((_SLOTS_FIRST[lo : lo + df], _SLOTS_LAST[hi : hi + dn]), None)
        signs = _SIGNS[(_WIDTH - df) * _LAYOUTS : (_WIDTH + dn) * _LAYOUTS]
        weight = (var > _MIN_BOX_VAR_MS2) * signs
        self._sum += np.bincount(slots, var * weight, _N_SLOTS + 1)[:_N_SLOTS]
        self._count += np.bincount(slots, weight, _N_SLOTS + 1)[:_N_SLOTS]
        self._changed += _SIZES * m
        self._synced_n, self._synced_first = n1, f1

    def _move(self, f0: int, n0: int, f1: int, n1: int) -> None:
        """Update the sums for the window moving from clean intervals [f0, n0) to [f1, n1).

        Box (size s, first interval a) is inside a window [f, n) when ``f <= a < n − s``. The
        old window's boxes with ``a < f1`` leave; the new window's boxes with
        ``a >= n0 − s`` enter. Both are laid out as one (13 sizes × m) batch; candidates
        that do not apply get weight 0.
        """
        df, dn = f1 - f0, n1 - n0
        limit = n0 - _SIZE_COLUMN  # (13, 1): per size, the first start not in the old window
        leaving = f0 + np.arange(df, dtype=np.intp)[None, :]
        entering = limit + np.arange(dn, dtype=np.intp)[None, :]
        starts = np.concatenate((np.broadcast_to(leaving, (len(DFA_SCALES), df)), entering), 1)
        sign = np.concatenate(
            (np.where(leaving < limit, -1.0, 0.0), np.where(entering >= f1, 1.0, 0.0)), 1
        )
        self._apply(starts, sign, n1)
        self._synced_n, self._synced_first = n1, f1

    def _apply(self, starts: npt.NDArray[np.intp], sign: FloatArray, n1: int) -> None:
        """Add (sign +1) or remove (−1) the boxes of the (13 sizes × m) batch ``starts``."""
        rows = self._x_rows[(starts + _GATHER_OFFSET) % self._cap]  # (13, m, 16)
        u = rows - self._x_ms[(n1 - 1) % self._cap]  # a constant shift leaves boxes unchanged
        var = np.einsum("jmk,jmk->jm", np.matmul(u, _QUADRATIC), u)
        weight = (var > _MIN_BOX_VAR_MS2) * sign
        slots = (_SLOT_COLUMN + starts % _STEP_COLUMN).ravel()
        self._sum += np.bincount(slots, (var * weight).ravel(), _N_SLOTS)
        self._count += np.bincount(slots, weight.ravel(), _N_SLOTS)
        self._changed += starts.size

    def _alpha1(self) -> float:
        """Slope of log2 F(s) on log2 s from the slots of the window's alignment (13 terms:
        cheaper in Python than as numpy calls); NaN when a size has no box with variance."""
        self._sync()
        first = self._first
        sums = self._sum.tolist()
        counts = self._count.tolist()
        alpha1 = 0.0
        for base, step, weight in _ALPHA_TERMS:
            slot = base + first % step
            count = counts[slot]
            if count < 0.5:
                return math.nan
            mean_var = sums[slot] / count
            if not mean_var > 0.0:
                return math.nan
            alpha1 += weight * math.log2(mean_var)
        return alpha1

    def _compute(self, time_s: float) -> DfaResult:
        n = self._n_total - self._first
        artifact_pct = 100.0 * self._artifacts / (len(self._times) - self._head)
        reason: str | None = None
        alpha1: float | None = None
        if artifact_pct >= DFA_MAX_ARTIFACT_PCT:
            reason = f"artifacts {artifact_pct:.1f} % >= {DFA_MAX_ARTIFACT_PCT:g} %"
        elif n < self._min_beats:
            reason = f"too few beats ({n} < {self._min_beats})"
        else:
            value = self._alpha1()
            if math.isfinite(value):
                alpha1 = value
            else:
                reason = "flat signal (no RR variation within boxes)"
        # DfaResult(alpha1=alpha1, ...) without the dataclass __init__ (once a second per
        # athlete; see processing.records.slot_setters)
        result = _new(DfaResult)
        _set_alpha1(result, alpha1)
        _set_reason(result, reason)
        _set_beats(result, n)
        _set_artifact_pct(result, artifact_pct)
        _set_time(result, time_s)
        return result

    def get(self) -> DfaResult:
        """The value at the last recomputation (at most ``update_interval_s`` old)."""
        return self._result
