# Runs a plan of statements through Ruby's mysql2 gem and prints what it saw, as JSON.
#
# Why: Ruby backends (Rails' MySQL adapter included) use mysql2, whose `query` takes no
# parameters: values are spliced in with the driver's own `client.escape`, which is what
# this script does for each `?` (numbers as they are, strings quoted and escaped).
# Settings come from COMETQL_HOST/PORT/USER/PASSWORD/DB; the plan is a JSON list on stdin:
# [{"sql": "...", "params": [...]}, ...]. Output: {"connect_error": null|{code,message,sqlstate},
# "results": [...]} where each result is {"affected","insert_id","columns","rows"} or
# {"error": {code,message,sqlstate}}. Debian: ruby-mysql2.
require 'json'
require 'mysql2'

def as_error(err)
  { code: err.error_number, message: err.message, sqlstate: err.sql_state }
end

def with_params(client, sql, params)
  values = params.map { |p| p.is_a?(Numeric) ? p.to_s : "'#{client.escape(p.to_s)}'" }
  sql.gsub('?') { values.shift }
end

plan = JSON.parse($stdin.read)
begin
  client = Mysql2::Client.new(host: ENV['COMETQL_HOST'], port: ENV['COMETQL_PORT'].to_i,
                              username: ENV['COMETQL_USER'], password: ENV['COMETQL_PASSWORD'],
                              database: ENV['COMETQL_DB'], connect_timeout: 5, read_timeout: 10)
rescue Mysql2::Error => e
  puts JSON.generate({ connect_error: as_error(e), results: [] })
  exit 0
end

results = plan.map do |step|
  sql = step['params'] ? with_params(client, step['sql'], step['params']) : step['sql']
  begin
    res = client.query(sql, as: :array, cast: false)
    if res.nil?
      { affected: client.affected_rows, insert_id: client.last_id, columns: nil, rows: nil }
    else
      { affected: client.affected_rows, insert_id: client.last_id, columns: res.fields, rows: res.to_a }
    end
  rescue Mysql2::Error => e
    { error: as_error(e) }
  end
end
client.close
puts JSON.generate({ connect_error: nil, results: results })
