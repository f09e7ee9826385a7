#!/usr/bin/env node
// A Node backend talking to CometQL with the `mysql` package (mysqljs/mysql).
//
// Publishes to a channel, sends a message to one user (queued by the server while
// that user is offline) and reads online statistics:
//
//   node examples/node/backend.js [CHANNEL] [USER_ID] [MESSAGE]
//
// Defaults: CHANNEL web_chat, USER_ID 42, MESSAGE "Hello from Node".
// Settings (environment): COMETQL_HOST (127.0.0.1), COMETQL_PORT (3300),
// COMETQL_PASSWORD (CometQLPassword), COMETQL_DEV (root = dev_id 0, or a number N).
// Needs the `mysql` package: `npm install` in examples/node (or NODE_PATH pointing at a
// node_modules that has it).
'use strict';

const mysql = require('mysql');

const env = (name, fallback) => process.env[name] ?? fallback;

// users_time: 0 while online, -1 if never seen, else the unix time of the last disconnect.
function describeLastSeen(t) {
  if (t === 0) return 'online now';
  if (t < 0) return 'never seen';
  return `last seen ${new Date(t * 1000).toISOString()}`;
}

async function main() {
  const [channel = 'web_chat', userArg = '42', message = 'Hello from Node'] = process.argv.slice(2);
  const userId = Number.parseInt(userArg, 10);
  const comet = mysql.createConnection({
    host: env('COMETQL_HOST', '127.0.0.1'),
    port: Number(env('COMETQL_PORT', '3300')),
    user: env('COMETQL_DEV', 'root'),
    password: env('COMETQL_PASSWORD', 'CometQLPassword'),
    database: 'CometQL_v1',
    connectTimeout: 5000,
  });
  // The driver escapes `?` parameters itself, so any text is safe; every statement takes
  // effect at once (CometQL has no transactions).
  const query = (sql, params = []) => new Promise((resolve, reject) => {
    comet.query({ sql, values: params, timeout: 10000 }, (err, rows) => (err ? reject(err) : resolve(rows)));
  });
  try {
    // Publish: every browser subscribed to the channel gets it now.
    await query('INSERT INTO pipes_messages (name, event, message) VALUES (?, ?, ?)', [channel, 'chat', message]);
    console.log(`published to ${channel}`);

    // Send to one user: delivered to all their tabs, or kept until they connect.
    // The insert id is the user id (CometQL's convention).
    const sent = await query('INSERT INTO users_messages (id, event, message) VALUES (?, ?, ?)',
      [userId, 'private', message]);
    console.log(`sent to user ${sent.insertId}`);

    // Online statistics (values arrive as strings, as from CppComet).
    const [pipe] = await query('SELECT users FROM pipes WHERE name = ?', [channel]);
    console.log(`subscribers of ${channel}: ${pipe.users}`);
    for (const row of await query('SELECT name, users FROM pipes ORDER BY users DESC LIMIT 5')) {
      console.log(`busiest channel: ${row.name} (${row.users} subscribers)`);
    }
    const [seen] = await query('SELECT time FROM users_time WHERE id = ?', [userId]);
    console.log(`user ${userId}: ${describeLastSeen(Number(seen.time))}`);
  } finally {
    comet.end();
  }
}

main().catch((err) => {
  console.error(`error: ${err.sqlMessage || err.message}`);
  process.exitCode = 1;
});
