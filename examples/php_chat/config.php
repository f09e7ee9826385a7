<?php
/*
 * Settings shared by the chat page (index.php) and the publisher (send.php), read from
 * the environment so `php -S` next to `make serve` needs no editing:
 *
 *   COMETQL_HOST      CometQL (MySQL protocol) host            127.0.0.1
 *   COMETQL_PORT      CometQL (MySQL protocol) port            3300
 *   COMETQL_PASSWORD  the server's [main] password             CometQLPassword
 *   COMETQL_DEV       login name: root (= dev_id 0) or a number root
 *   COMETQL_NODE      host:port of the browser face (ws port)  COMETQL_HOST:8087
 */

function cometql_setting(string $name, string $default): string
{
    $value = getenv($name);
    return $value === false || $value === '' ? $default : $value;
}

/** The dev_id the browser passes to start(): the MySQL login name, with root meaning 0. */
function cometql_dev_id(): int
{
    $dev = cometql_setting('COMETQL_DEV', 'root');
    return $dev === 'root' ? 0 : (int)$dev;
}

/** A mysqli connection to CometQL; errors become mysqli_sql_exception. */
function cometql_connect(): mysqli
{
    mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
    $link = mysqli_connect(
        cometql_setting('COMETQL_HOST', '127.0.0.1'),
        cometql_setting('COMETQL_DEV', 'root'),
        cometql_setting('COMETQL_PASSWORD', 'CometQLPassword'),
        'CometQL_v1',
        (int)cometql_setting('COMETQL_PORT', '3300')
    );
    mysqli_set_charset($link, 'utf8mb4');
    return $link;
}
