#!/usr/bin/env python3
"""A Python backend talking to CometQL with PyMySQL.

Publishes to a channel, sends a message to one user (queued by the server while
that user is offline) and reads online statistics::

    python examples/python/backend.py [CHANNEL] [USER_ID] [MESSAGE]

Defaults: CHANNEL web_chat, USER_ID 42, MESSAGE "Hello from Python".
Settings (environment): COMETQL_HOST (127.0.0.1), COMETQL_PORT (3300),
COMETQL_PASSWORD (CometQLPassword), COMETQL_DEV (root = dev_id 0, or a number N).
Needs PyMySQL (``pip install pymysql``).
"""

from __future__ import annotations

import argparse
import os
import time

import pymysql


def connect() -> pymysql.Connection:
    return pymysql.connect(
        host=os.environ.get("COMETQL_HOST", "127.0.0.1"),
        port=int(os.environ.get("COMETQL_PORT", "3300")),
        user=os.environ.get("COMETQL_DEV", "root"),
        password=os.environ.get("COMETQL_PASSWORD", "CometQLPassword"),
        database="CometQL_v1",
        autocommit=True,  # CometQL has no transactions: every statement takes effect at once
        connect_timeout=5,
        read_timeout=10,
    )


def describe_last_seen(t: int) -> str:
    """users_time: 0 while online, -1 if never seen, else the unix time of the last disconnect."""
    if t == 0:
        return "online now"
    if t < 0:
        return "never seen"
    return "last seen " + time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(t))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("channel", nargs="?", default="web_chat")
    parser.add_argument("user_id", nargs="?", type=int, default=42)
    parser.add_argument("message", nargs="?", default="Hello from Python")
    args = parser.parse_args()

    with connect() as comet, comet.cursor() as cur:
        # Publish: every browser subscribed to the channel gets it now. PyMySQL escapes
        # the parameters, so any text is safe.
        cur.execute("INSERT INTO pipes_messages (name, event, message) VALUES (%s, %s, %s)",
                    (args.channel, "chat", args.message))
        print(f"published to {args.channel}")

        # Send to one user: delivered to all their tabs, or kept until they connect.
        # The insert id is the user id (CometQL's convention).
        cur.execute("INSERT INTO users_messages (id, event, message) VALUES (%s, %s, %s)",
                    (args.user_id, "private", args.message))
        print(f"sent to user {cur.lastrowid}")

        # Online statistics (values arrive as strings, as from CppComet).
        cur.execute("SELECT users FROM pipes WHERE name = %s", (args.channel,))
        print(f"subscribers of {args.channel}: {cur.fetchone()[0]}")
        cur.execute("SELECT name, users FROM pipes ORDER BY users DESC LIMIT 5")
        for name, users in cur.fetchall():
            print(f"busiest channel: {name} ({users} subscribers)")
        cur.execute("SELECT time FROM users_time WHERE id = %s", (args.user_id,))
        print(f"user {args.user_id}: {describe_last_seen(int(cur.fetchone()[0]))}")


if __name__ == "__main__":
    main()
