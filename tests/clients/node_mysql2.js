// Runs a plan of statements through Node's `mysql2` package and prints what it saw, as JSON.
//
// Why: mysql2 is today's usual Node driver, with two ways to pass parameters that put different
// bytes on the wire; COMETQL_MYSQL2_API picks one: `query` (the driver escapes the values into
// the text, COM_QUERY) or `execute` (a server-side prepared statement, cached per connection:
// COM_STMT_PREPARE once, then COM_STMT_EXECUTE with binary parameters and binary rows).
// Settings come from COMETQL_HOST/PORT/USER/PASSWORD/DB; the plan is a JSON list on stdin:
// [{"sql": "...", "params": [...]}, ...]. Output: {"connect_error": null|{code,message,sqlstate},
// "results": [...]} where each result is {"affected","insert_id","columns","rows"} or
// {"error": {code,message,sqlstate}}. Needs `npm install` in tests/clients.
'use strict';

const mysql = require('mysql2/promise');

const api = process.env.COMETQL_MYSQL2_API || 'query';

async function readStdin() {
  let data = '';
  process.stdin.setEncoding('utf8');
  for await (const chunk of process.stdin) data += chunk;
  return data;
}

const asError = (err) => ({ code: err.errno, message: err.sqlMessage, sqlstate: err.sqlState });

async function run(conn, step) {
  try {
    const [results, fields] = await conn[api]({ sql: step.sql, rowsAsArray: true, timeout: 10000 },
                                              step.params || []);
    if (fields) {
      return { affected: 0, insert_id: 0, columns: fields.map((f) => f.name), rows: results };
    }
    return { affected: results.affectedRows, insert_id: results.insertId, columns: null, rows: null };
  } catch (err) {
    if (!err.sqlMessage) throw err;  // not the server's answer: a broken connection fails the run
    return { error: asError(err) };
  }
}

async function main() {
  const plan = JSON.parse(await readStdin());
  let conn;
  try {
    conn = await mysql.createConnection({
      host: process.env.COMETQL_HOST,
      port: Number(process.env.COMETQL_PORT),
      user: process.env.COMETQL_USER,
      password: process.env.COMETQL_PASSWORD,
      database: process.env.COMETQL_DB,
      connectTimeout: 5000,
    });
  } catch (err) {
    process.stdout.write(JSON.stringify({ connect_error: asError(err), results: [] }) + '\n');
    return;
  }
  const results = [];
  for (const step of plan) {
    results.push(await run(conn, step));
  }
  await conn.end();
  process.stdout.write(JSON.stringify({ connect_error: null, results }) + '\n');
}

main().catch((err) => { console.error(err); process.exit(1); });
