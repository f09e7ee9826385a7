// Runs a plan of statements through Node's `mysql` package and prints what it saw, as JSON.
//
// Why: CppComet's own coverage suite and many Node backends use exactly this driver
// (mysqljs/mysql), which escapes `?` parameters itself and sends COM_QUERY. Settings come
// from COMETQL_HOST/PORT/USER/PASSWORD/DB; the plan is a JSON list on stdin:
// [{"sql": "...", "params": [...]}, ...]. Output: {"connect_error": null|{code,message,sqlstate},
// "results": [...]} where each result is {"affected","insert_id","columns","rows"} or
// {"error": {code,message,sqlstate}}. Needs `npm install` in tests/clients.
'use strict';

const mysql = require('mysql');

function readStdin() {
  return new Promise((resolve, reject) => {
    let data = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (chunk) => { data += chunk; });
    process.stdin.on('end', () => resolve(data));
    process.stdin.on('error', reject);
  });
}

const asError = (err) => ({ code: err.errno, message: err.sqlMessage, sqlstate: err.sqlState });

function query(conn, sql, params) {
  return new Promise((resolve) => {
    conn.query({ sql, values: params || [], timeout: 10000 }, (err, results, fields) => {
      if (err) {
        resolve({ error: asError(err) });
      } else if (fields) {
        const columns = fields.map((f) => f.name);  // rows are objects keyed by column name
        resolve({ affected: 0, insert_id: 0, columns, rows: results.map((r) => columns.map((c) => r[c])) });
      } else {
        resolve({ affected: results.affectedRows, insert_id: results.insertId, columns: null, rows: null });
      }
    });
  });
}

async function main() {
  const plan = JSON.parse(await readStdin());
  const conn = mysql.createConnection({
    host: process.env.COMETQL_HOST,
    port: Number(process.env.COMETQL_PORT),
    user: process.env.COMETQL_USER,
    password: process.env.COMETQL_PASSWORD,
    database: process.env.COMETQL_DB,
    connectTimeout: 5000,
  });
  const connectError = await new Promise((resolve) => conn.connect((err) => resolve(err ? asError(err) : null)));
  const results = [];
  if (connectError === null) {
    for (const step of plan) {
      results.push(await query(conn, step.sql, step.params));
    }
    conn.end();
  } else {
    conn.destroy();
  }
  process.stdout.write(JSON.stringify({ connect_error: connectError, results }) + '\n');
}

main().catch((err) => { console.error(err); process.exit(1); });
