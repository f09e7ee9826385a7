<?php
/*
 * The chat's backend: the form on index.php POSTs `name` and `text` here, and this
 * publishes them to channel `simplechat`, event `newMessage`, with one CometQL INSERT.
 * Every page subscribed to simplechat.newMessage (including the sender's) shows it.
 * The message is JSON; mysqli_real_escape_string keeps quotes, backslashes and any
 * other text safe inside the SQL string literal.
 */

require __DIR__ . '/config.php';

header('Content-Type: application/json; charset=utf-8');

if (($_SERVER['REQUEST_METHOD'] ?? 'GET') !== 'POST') {
    http_response_code(405);
    echo json_encode(['error' => 'POST name and text']);
    exit;
}

$name = trim((string)($_POST['name'] ?? ''));
$text = trim((string)($_POST['text'] ?? ''));
if ($name === '' || $text === '') {
    http_response_code(400);
    echo json_encode(['error' => 'name and text are required']);
    exit;
}

try {
    $link = cometql_connect();
    $message = json_encode(['name' => $name, 'text' => $text], JSON_UNESCAPED_UNICODE);
    mysqli_query($link, "INSERT INTO pipes_messages (name, event, message) VALUES ('simplechat', 'newMessage', '"
        . mysqli_real_escape_string($link, $message) . "')");
    mysqli_close($link);
} catch (mysqli_sql_exception $e) {
    http_response_code(502);
    echo json_encode(['error' => 'CometQL: ' . $e->getMessage()]);
    exit;
}

echo json_encode(['ok' => true]);
