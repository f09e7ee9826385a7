<?php
/*
 * The chat page. It loads the browser library from the CometQL server itself, subscribes
 * to simplechat.newMessage and shows every message; the form POSTs to send.php.
 *
 * Where the CometQL server's browser face is: ?node=host:port, else COMETQL_NODE, else
 * COMETQL_HOST:8087. The dev_id comes from ?dev_id=N, else COMETQL_DEV (root = 0), so the
 * page listens where send.php publishes.
 */

require __DIR__ . '/config.php';

$node = $_GET['node'] ?? cometql_setting('COMETQL_NODE', cometql_setting('COMETQL_HOST', '127.0.0.1') . ':8087');
if (!preg_match('/^[A-Za-z0-9.\-\[\]:]+$/', $node)) {
    http_response_code(400);
    exit('bad node: use host:port');
}
$devId = isset($_GET['dev_id']) ? (int)$_GET['dev_id'] : cometql_dev_id();
$h = fn(string $s): string => htmlspecialchars($s, ENT_QUOTES, 'UTF-8');
?>
<!doctype html>
<html>
<head>
<meta charset="utf-8">
<title>CometQL PHP chat</title>
<style>
  body { font-family: sans-serif; max-width: 40em; margin: 2em auto; }
  #messages { border: 1px solid #ccc; min-height: 12em; padding: .5em; margin-bottom: 1em; }
  #messages p { margin: .2em 0; }
  #status { color: #888; font-size: .9em; }
</style>
<script src="http://<?= $h($node) ?>/cometql.js"></script>
</head>
<body>
<h1>Chat</h1>
<div id="messages"></div>
<form id="chat" action="send.php" method="post">
  <input id="name" name="name" placeholder="Your name" required>
  <input id="text" name="text" placeholder="Message" size="40" required>
  <button id="send" type="submit">Send</button>
</form>
<p id="status">connecting…</p>
<script>
  var messages = document.getElementById("messages");
  var statusLine = document.getElementById("status");

  /** Show one message; textContent keeps whatever people type from becoming HTML. */
  function show(msg) {
    var line = document.createElement("p");
    var who = document.createElement("b");
    who.textContent = msg.name + ": ";
    line.appendChild(who);
    line.appendChild(document.createTextNode(msg.text));
    messages.appendChild(line);
  }

  CometServer().start({dev_id: <?= $devId ?>, node: <?= json_encode($node) ?>});
  CometServer().subscription("simplechat.newMessage", function (event) { show(event.data); });
  // serverInfo (the server's hello) settles the authorization either way: we are connected.
  CometServer().onAuthSuccess(function () { statusLine.textContent = "connected"; });
  CometServer().onAuthFalill(function () { statusLine.textContent = "connected"; });

  // Send through send.php without leaving the page (the form also works without JavaScript).
  document.getElementById("chat").addEventListener("submit", function (e) {
    e.preventDefault();
    var text = document.getElementById("text");
    var body = new URLSearchParams({name: document.getElementById("name").value, text: text.value});
    fetch("send.php", {method: "POST", body: body}).then(function (r) {
      if (!r.ok) { return r.json().then(function (j) { throw new Error(j.error); }); }
      text.value = "";
      statusLine.textContent = "sent";
    }).catch(function (err) { statusLine.textContent = "not sent: " + err.message; });
  });
</script>
</body>
</html>
