#!/usr/bin/env bash
# Publish a message to a CometQL channel from the shell, with the stock `mysql` client.
#
#   examples/bash/notify.sh [-e EVENT] CHANNEL MESSAGE...
#
# e.g. from cron:  examples/bash/notify.sh -e backup web_admins "Backup of $(hostname) finished"
# Every browser subscribed to CHANNEL gets {"data": MESSAGE, "event": EVENT, "pipe": CHANNEL}.
# The message is every argument after CHANNEL, joined by spaces; any text is safe (quotes,
# backslashes, newlines, `;`): it is escaped as a MySQL string literal before it is sent.
#
# Settings (environment):
#   COMETQL_HOST      (127.0.0.1)        CometQL server
#   COMETQL_PORT      (3300)             its MySQL-protocol port
#   COMETQL_PASSWORD  (CometQLPassword)  the [main] password
#   COMETQL_DEV       (root)             login name: root = dev_id 0, a number N = dev_id N
set -euo pipefail

usage() {
    echo "usage: $0 [-e EVENT] CHANNEL MESSAGE..." >&2
    exit 2
}

event=notify
while getopts 'e:h' opt; do
    case $opt in
        e) event=$OPTARG ;;
        *) usage ;;
    esac
done
shift $((OPTIND - 1))
[ $# -ge 2 ] || usage
channel=$1
shift
message="$*"

# The server's own rules for names; checking them here gives a clear message before connecting.
if [[ ! $channel =~ ^[A-Za-z0-9_-]{3,64}$ ]]; then
    echo "$0: channel name must be 3-64 characters of A-Za-z0-9_-" >&2
    exit 2
fi
if [[ ! $event =~ ^[A-Za-z0-9_-]{0,64}$ ]]; then
    echo "$0: event name must be at most 64 characters of A-Za-z0-9_-" >&2
    exit 2
fi

# sql_string VAR TEXT: set VAR to TEXT as a quoted MySQL string literal (backslashes first, then quotes).
sql_string() {
    local text=${2//\\/\\\\}
    text=${text//\'/\\\'}
    printf -v "$1" "'%s'" "$text"
}
sql_string channel_sql "$channel"
sql_string event_sql "$event"
sql_string message_sql "$message"

# The statement goes in on stdin and the password through MYSQL_PWD, so neither shows up in `ps`.
printf 'INSERT INTO pipes_messages (name, event, message) VALUES (%s, %s, %s);\n' \
    "$channel_sql" "$event_sql" "$message_sql" |
    MYSQL_PWD=${COMETQL_PASSWORD:-CometQLPassword} mysql --batch \
        -h "${COMETQL_HOST:-127.0.0.1}" -P "${COMETQL_PORT:-3300}" -u "${COMETQL_DEV:-root}" CometQL_v1

echo "published to $channel"
