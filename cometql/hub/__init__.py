"""Sans-IO core: channels, sessions, presence, queues, history and auth.

Nothing in this package does I/O, imports trio or reads a clock (a test checks).
"""

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
from ._effects import Broadcast, Deliver, Disconnect, Effect, Persist
from ._frames import encode_frame
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
    "RemoteSession",
    "SessionClosed",
    "SessionOpened",
    "SessionSubscribed",
    "Subscriber",
    "UserMessage",
    "channel_problem",
    "encode_frame",
    "event_problem",
    "hash_problem",
    "is_valid_channel",
]
