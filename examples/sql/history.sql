-- Online statistics over time (stats_history), e.g. from a daily cron job:
--
--   mysql -h 127.0.0.1 -P 3300 -u root -pCometQLPassword CometQL_v1 < examples/sql/history.sql
--
-- CometQL samples every minute ([stats] interval); times are UTC. The totals row has channel ''.

-- Peak of online users per day.
SELECT DATE(time) AS day, MAX(users) AS peak_users, MAX(sessions) AS peak_sessions
FROM stats_history WHERE channel = '' GROUP BY DATE(time) ORDER BY day;

-- Messages per day: published by backends and browsers, frames delivered to sessions.
SELECT DATE(time) AS day, SUM(published) AS published, SUM(delivered) AS delivered
FROM stats_history WHERE channel = '' GROUP BY DATE(time) ORDER BY day;

-- The busiest channels of the last 24 hours, by peak users.
SELECT channel, MAX(users) AS peak_users, SUM(published) AS published
FROM stats_history WHERE channel <> '' AND time > NOW() - INTERVAL 1 DAY
GROUP BY channel ORDER BY peak_users DESC, channel LIMIT 10;
