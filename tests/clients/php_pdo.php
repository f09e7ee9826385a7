<?php
/*
 * Runs a plan of statements through PHP's PDO (pdo_mysql) and prints what PDO saw, as JSON.
 *
 * Why: PDO is the other way PHP backends talk to CometQL, in two modes that put very
 * different bytes on the wire: emulated prepares (PDO quotes the parameters itself and
 * sends COM_QUERY; the default) and native prepares (COM_STMT_PREPARE/EXECUTE with
 * binary parameters). COMETQL_PDO_EMULATE=1|0 picks the mode; connection settings come
 * from COMETQL_HOST/PORT/USER/PASSWORD/DB; the plan is a JSON list on stdin:
 * [{"sql": "...", "params": [...]}, ...]. Every step is prepare() + execute().
 * Output: {"connect_error": null|{code,message,sqlstate}, "results": [...]} where each
 * result is {"affected","insert_id","columns","rows"} or {"error": {code,message,sqlstate}}.
 */

$plan = json_decode(stream_get_contents(STDIN), true, 512, JSON_THROW_ON_ERROR);
$dsn = sprintf('mysql:host=%s;port=%d;dbname=%s', getenv('COMETQL_HOST'), (int)getenv('COMETQL_PORT'),
               getenv('COMETQL_DB'));
try {
    $pdo = new PDO($dsn, getenv('COMETQL_USER'), getenv('COMETQL_PASSWORD'), [
        PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION,
        PDO::ATTR_EMULATE_PREPARES => getenv('COMETQL_PDO_EMULATE') !== '0',
        PDO::ATTR_TIMEOUT => 5,
    ]);
} catch (PDOException $e) {
    // Connection errors carry the server's errno as the exception code: "SQLSTATE[HY000] [1045] ...".
    $message = preg_replace('/^SQLSTATE\[\w+\] \[\d+\] /', '', $e->getMessage());
    preg_match('/^SQLSTATE\[(\w+)\]/', $e->getMessage(), $state);
    echo json_encode(['connect_error' => ['code' => $e->getCode(), 'message' => $message,
                                          'sqlstate' => $state[1] ?? null], 'results' => []]), "\n";
    exit(0);
}

$results = [];
foreach ($plan as $step) {
    try {
        $stmt = $pdo->prepare($step['sql']);
        $stmt->execute($step['params'] ?? []);
        if ($stmt->columnCount() > 0) {
            $rows = $stmt->fetchAll(PDO::FETCH_NUM);
            $columns = [];
            for ($i = 0; $i < $stmt->columnCount(); $i++) {
                $columns[] = $stmt->getColumnMeta($i)['name'];
            }
            $results[] = ['affected' => $stmt->rowCount(), 'insert_id' => (int)$pdo->lastInsertId(),
                          'columns' => $columns, 'rows' => $rows];
        } else {
            $results[] = ['affected' => $stmt->rowCount(), 'insert_id' => (int)$pdo->lastInsertId(),
                          'columns' => null, 'rows' => null];
        }
        $stmt->closeCursor();
    } catch (PDOException $e) {
        [$sqlstate, $code, $message] = $e->errorInfo;
        $results[] = ['error' => ['code' => $code, 'message' => $message, 'sqlstate' => $sqlstate]];
    }
}
echo json_encode(['connect_error' => null, 'results' => $results]), "\n";
