-- Online statistics straight from CometQL, with any MySQL client:
--
--   mysql -h 127.0.0.1 -P 3300 -u root -pCometQLPassword CometQL_v1 < examples/sql/online_users.sql
--
-- (add -t for boxed tables). Counts are live: they cover the browsers connected right now.
-- Edit the channel name 'web_chat' and the user ids to your own.

-- Channels with subscribers, busiest first.
SELECT name, users FROM pipes ORDER BY users DESC LIMIT 20;

-- How many connections are subscribed to one channel ...
SELECT COUNT(*) AS online_in_web_chat FROM users_in_pipes WHERE name = 'web_chat';

-- ... and who they are (user_id 0 = not logged in).
SELECT user_id, ip, user_agent FROM users_in_pipes WHERE name = 'web_chat';

-- Last time users were online: 0 = online now, -1 = never seen, else a unix time.
SELECT id, time FROM users_time WHERE id IN (1, 2, 3) ORDER BY id;

-- How many logged-in users are online right now.
SELECT COUNT(*) AS users_online_now FROM users_time WHERE time = 0;
