"""Push notifications of alerts through Apprise (issue #12): ntfy, Gotify, Telegram, Pushover,
Home Assistant, e-mail, JSON webhooks… by URL, no hand-written HTTP per service.

* :mod:`outputs.notify.route` (pure): targets and filters, cooldowns and summaries, the words.
* :mod:`outputs.notify.sender`: one Apprise URL on a private worker thread, redacted errors.
* :mod:`outputs.notify.delivery`: from the store's outbox, one cursor and task per target.
"""

from outputs.notify.delivery import (
    ALERT_KINDS,
    Notifier,
    NotifyDelivery,
    NotifyState,
    NotifyStatus,
)
from outputs.notify.route import (
    DEFAULT_COOLDOWN_S,
    NotifyMessage,
    NotifyTarget,
    Router,
    TargetRouter,
    alert_message,
    summary_message,
)
from outputs.notify.sender import (
    AppriseSender,
    NotifyConfigError,
    Sender,
    SendOutcome,
    check_notify_url,
    redact_url,
)

__all__ = [
    "ALERT_KINDS",
    "DEFAULT_COOLDOWN_S",
    "AppriseSender",
    "Notifier",
    "NotifyConfigError",
    "NotifyDelivery",
    "NotifyMessage",
    "NotifyState",
    "NotifyStatus",
    "NotifyTarget",
    "Router",
    "SendOutcome",
    "Sender",
    "TargetRouter",
    "alert_message",
    "check_notify_url",
    "redact_url",
    "summary_message",
]
