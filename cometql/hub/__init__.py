"""Sans-IO core: channels, sessions, presence, queues, history and auth.

Nothing in this package does I/O, imports trio or reads a clock (a test checks).
"""

from ._browser import handle_command, open_session
from ._cluster import (
    ClusterEvent,
    Kick,
    Published,
    RemoteSession,
    SessionClosed,
    SessionOpened,
    SessionSubscribed,
    UserMessage,
)
from ._effects import Broadcast, Deliver, Disconnect, Effect, Persist, Refused
from ._frames import encode_frame, error_frame, sys_frame
from ._hub import MAX_HISTORY, MAX_USER_CONNECTIONS, Hub, HubStatistics
from ._names import channel_problem, event_problem, hash_problem, is_valid_channel
from ._records import HistoryEntry, QueuedMessage, Record
from ._subscriber import ConnInfo, ListSubscriber, Subscriber

__all__ = [
    "MAX_HISTORY",
    "MAX_USER_CONNECTIONS",
    "Broadcast",
    "ClusterEvent",
    "ConnInfo",
    "Deliver",
    "Disconnect",
    "Effect",
    "HistoryEntry",
    "Hub",
    "HubStatistics",
    "Kick",
    "ListSubscriber",
    "Persist",
    "Published",
    "QueuedMessage",
    "Record",
    "Refused",
    "RemoteSession",
    "SessionClosed",
    "SessionOpened",
    "SessionSubscribed",
    "Subscriber",
    "UserMessage",
    "channel_problem",
    "encode_frame",
    "error_frame",
    "event_problem",
    "handle_command",
    "hash_problem",
    "is_valid_channel",
    "open_session",
    "sys_frame",
]
