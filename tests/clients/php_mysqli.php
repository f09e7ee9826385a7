<?php
/*
 * Runs a plan of statements through PHP's mysqli and prints what mysqli saw, as JSON.
 *
 * Why: the pytest suite must see exactly what a PHP backend sees (affected_rows,
 * insert_id, errno/error/sqlstate, row values) from the real driver, not a Python
 * imitation. Settings come from COMETQL_HOST/PORT/USER/PASSWORD/DB; the plan is a
 * JSON list on stdin: [{"sql": "...", "params": [...], "escape_params": bool}, ...].
 *   - no params:            $mysqli->query()            (COM_QUERY)
 *   - params:               $mysqli->execute_query()    (server-side prepared statement)
 *   - params + escape_params: each ? becomes '<mysqli_real_escape_string(value)>' (COM_QUERY),
 *                           the way most PHP code builds statements (the SQL must hold no other ?).
 *   - "multi": true         $mysqli->multi_query(), then one result per statement (next_result()).
 * Output: {"connect_error": null|{code,message,sqlstate}, "results": [...]} where each
 * result is {"affected","insert_id","columns","rows"} or {"error": {code,message,sqlstate}}.
 */

mysqli_report(MYSQLI_REPORT_OFF);  // read errno/error instead of catching exceptions

$plan = json_decode(stream_get_contents(STDIN), true, 512, JSON_THROW_ON_ERROR);
$db = mysqli_init();
$db->options(MYSQLI_OPT_CONNECT_TIMEOUT, 5);
$db->options(MYSQLI_OPT_READ_TIMEOUT, 10);
if (!@$db->real_connect(getenv('COMETQL_HOST'), getenv('COMETQL_USER'), getenv('COMETQL_PASSWORD'),
                        getenv('COMETQL_DB'), (int)getenv('COMETQL_PORT'))) {
    // After a failed connect only the connect_* values are readable (mysqli exposes no SQLSTATE for it).
    echo json_encode(['connect_error' => ['code' => mysqli_connect_errno(), 'message' => mysqli_connect_error(),
                                          'sqlstate' => null], 'results' => []]), "\n";
    exit(0);
}

function escape_params(mysqli $db, string $sql, array $params): string {
    $parts = explode('?', $sql);
    $out = array_shift($parts);
    foreach ($parts as $i => $part) {
        $out .= "'" . $db->real_escape_string((string)$params[$i]) . "'" . $part;
    }
    return $out;
}

// One answer: false is the error just reported, a mysqli_result a result set, anything else an OK.
function result_of(mysqli $db, $res): array {
    if ($res === false) {
        return ['error' => ['code' => $db->errno, 'message' => $db->error, 'sqlstate' => $db->sqlstate]];
    }
    if ($res instanceof mysqli_result) {
        $columns = array_map(fn($f) => $f->name, $res->fetch_fields());
        $out = ['affected' => $db->affected_rows, 'insert_id' => $db->insert_id,
                'columns' => $columns, 'rows' => $res->fetch_all(MYSQLI_NUM)];
        $res->free();
        return $out;
    }
    return ['affected' => $db->affected_rows, 'insert_id' => $db->insert_id, 'columns' => null, 'rows' => null];
}

$results = [];
foreach ($plan as $step) {
    if (!empty($step['multi'])) {  // every answer, as a PHP backend reads them; an error ends the query
        $ok = $db->multi_query($step['sql']);
        while (true) {
            if (!$ok) {
                $results[] = result_of($db, false);
                break;
            }
            $res = $db->store_result();
            $results[] = result_of($db, $res === false && $db->errno === 0 ? null : $res);
            if (!$db->more_results()) {
                break;
            }
            $ok = $db->next_result();
        }
        continue;
    }
    $params = $step['params'] ?? null;
    if ($params !== null && !empty($step['escape_params'])) {
        $res = $db->query(escape_params($db, $step['sql'], $params));
    } elseif ($params !== null) {
        $res = $db->execute_query($step['sql'], $params);
    } else {
        $res = $db->query($step['sql']);
    }
    $results[] = result_of($db, $res);
}
$db->close();
echo json_encode(['connect_error' => null, 'results' => $results]), "\n";
