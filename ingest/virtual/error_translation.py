"""bumble → bleak error translation for the virtual radio's bleak backend.

Code written against bleak catches bleak exceptions, so bumble's must not leak out of the
backend (notes ``shared/notes/bleak-over-bumble.md``, trap 8): ATT error responses become
``BleakGATTProtocolError`` with their code, other bumble errors ``BleakError``, and the
``CancelledError`` bumble raises in a pending GATT request when the link drops becomes a
"Not connected" ``BleakError``. Shared by the central (connects) and the bleak client (GATT
operations).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from bleak.exc import BleakError, BleakGATTProtocolError
from bumble import att, core


def translate_error(exc: BaseException) -> BaseException:
    """Maps a bumble exception to the bleak exception a user of bleak expects.

    ATT error responses become :class:`BleakGATTProtocolError` (code kept); bumble connection
    and protocol errors become :class:`BleakError`; anything else is returned unchanged.
    """
    if isinstance(exc, att.ATT_Error):
        return BleakGATTProtocolError(int(exc.error_code))
    if isinstance(exc, core.BaseBumbleError):
        return BleakError(f"virtual radio: {exc}")
    return exc


@contextmanager
def bleak_errors() -> Iterator[None]:
    """Translates bumble errors at the edge; also the ``CancelledError`` bumble raises in a
    pending GATT request when the link drops (the task itself is not being cancelled)."""
    try:
        yield
    except (att.ATT_Error, core.BaseBumbleError) as exc:
        raise translate_error(exc) from exc
    except asyncio.CancelledError as exc:
        task = asyncio.current_task()
        if task is not None and task.cancelling() == 0:
            raise BleakError("Not connected: the link was lost during the operation") from exc
        raise
