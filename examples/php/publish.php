<?php
/*
 * A PHP backend talking to CometQL with mysqli: publish to a channel, send a message to
 * one user (queued by the server while that user is offline), and read online statistics.
 *
 *   php examples/php/publish.php [CHANNEL] [USER_ID] [MESSAGE]
 *
 * Defaults: CHANNEL web_chat, USER_ID 42, MESSAGE "Hello from PHP".
 * Settings (environment): COMETQL_HOST (127.0.0.1), COMETQL_PORT (3300),
 * COMETQL_PASSWORD (CometQLPassword), COMETQL_DEV (root = dev_id 0, or a number N).
 * Needs the mysqli extension (Debian/Ubuntu: apt-get install php-cli php-mysql).
 */

mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);  // errors become mysqli_sql_exception

$channel = $argv[1] ?? 'web_chat';
$userId = (int)($argv[2] ?? 42);
$message = $argv[3] ?? 'Hello from PHP';

$env = fn(string $name, string $default): string => getenv($name) === false ? $default : getenv($name);
$comet = new mysqli($env('COMETQL_HOST', '127.0.0.1'), $env('COMETQL_DEV', 'root'),
                    $env('COMETQL_PASSWORD', 'CometQLPassword'), 'CometQL_v1', (int)$env('COMETQL_PORT', '3300'));

// Publish: every browser subscribed to $channel gets the message now. Prepared statements
// keep any text safe; $comet->real_escape_string() inside quotes works as well.
$publish = $comet->prepare('INSERT INTO pipes_messages (name, event, message) VALUES (?, ?, ?)');
$event = 'chat';
$publish->bind_param('sss', $channel, $event, $message);
$publish->execute();
echo "published to $channel\n";

// Send to one user: delivered to all their open tabs, or kept until they connect.
// The insert id is the user id (CometQL's convention).
$send = $comet->prepare('INSERT INTO users_messages (id, event, message) VALUES (?, ?, ?)');
$event = 'private';
$send->bind_param('iss', $userId, $event, $message);
$send->execute();
echo "sent to user {$comet->insert_id}\n";

// Online statistics: subscribers per channel, and when the user was last online.
$row = $comet->query("SELECT users FROM pipes WHERE name = '" . $comet->real_escape_string($channel) . "'")->fetch_row();
echo "subscribers of $channel: {$row[0]}\n";
foreach ($comet->query('SELECT name, users FROM pipes ORDER BY users DESC LIMIT 5') as $pipe) {
    echo "busiest channel: {$pipe['name']} ({$pipe['users']} subscribers)\n";
}
$time = (int)$comet->query("SELECT time FROM users_time WHERE id = $userId")->fetch_row()[0];
echo "user $userId: " . ($time === 0 ? 'online now' : ($time < 0 ? 'never seen' : 'last seen ' . date('c', $time))) . "\n";

$comet->close();
