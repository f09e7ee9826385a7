// Runs a plan of statements through JDBC with MariaDB Connector/J and prints what it saw, as JSON.
//
// Why: Java backends reach MySQL through JDBC; Debian ships MariaDB Connector/J (libmariadb-java).
// Its defaults: a statement with parameters is a PreparedStatement whose parameters the driver
// escapes itself (useServerPrepStmts=false) and sends as COM_QUERY; insert ids come from
// getGeneratedKeys(). Settings come from COMETQL_HOST/PORT/USER/PASSWORD/DB; the plan is a JSON
// list on stdin: [{"sql": "...", "params": [...]}, ...]. Output: {"connect_error": null|{code,
// message,sqlstate}, "results": [...]} where each result is {"affected","insert_id","columns",
// "rows"} or {"error": {code,message,sqlstate}}. The driver prefixes server messages with
// "(conn=N) "; that prefix is removed. With --serve it answers one request per line (see main),
// so the tests start one JVM per run. Compiled once per test run with javac (gson from Debian's
// libgoogle-gson-java reads and writes the JSON).
import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;

public class JdbcMariadb {
    static final Gson GSON = new GsonBuilder().serializeNulls().disableHtmlEscaping().create();

    static Map<String, Object> asError(SQLException e) {
        Map<String, Object> err = new LinkedHashMap<>();
        err.put("code", e.getErrorCode());
        err.put("message", e.getMessage() == null ? "" : e.getMessage().replaceFirst("^\\(conn=-?\\d+\\) ", ""));
        err.put("sqlstate", e.getSQLState());
        return err;
    }

    static Map<String, Object> run(Connection conn, JsonObject step) throws SQLException {
        String sql = step.get("sql").getAsString();
        JsonArray params = step.has("params") ? step.getAsJsonArray("params") : new JsonArray();
        try (PreparedStatement stmt = conn.prepareStatement(sql, Statement.RETURN_GENERATED_KEYS)) {
            for (int i = 0; i < params.size(); i++) {
                JsonElement p = params.get(i);
                if (p.isJsonNull()) {
                    stmt.setObject(i + 1, null);
                } else if (p.getAsJsonPrimitive().isNumber()) {
                    stmt.setLong(i + 1, p.getAsLong());
                } else {
                    stmt.setString(i + 1, p.getAsString());
                }
            }
            Map<String, Object> out = new LinkedHashMap<>();
            if (stmt.execute()) {
                List<String> columns = new ArrayList<>();
                List<List<String>> rows = new ArrayList<>();
                try (ResultSet rs = stmt.getResultSet()) {
                    ResultSetMetaData meta = rs.getMetaData();
                    for (int i = 1; i <= meta.getColumnCount(); i++) {
                        columns.add(meta.getColumnLabel(i));
                    }
                    while (rs.next()) {
                        List<String> row = new ArrayList<>();
                        for (int i = 1; i <= columns.size(); i++) {
                            row.add(rs.getString(i));
                        }
                        rows.add(row);
                    }
                }
                out.put("affected", 0);
                out.put("insert_id", 0);
                out.put("columns", columns);
                out.put("rows", rows);
            } else {
                long insertId = 0;
                try (ResultSet keys = stmt.getGeneratedKeys()) {
                    if (keys.next()) {
                        insertId = keys.getLong(1);
                    }
                }
                out.put("affected", stmt.getUpdateCount());
                out.put("insert_id", insertId);
                out.put("columns", null);
                out.put("rows", null);
            }
            return out;
        } catch (SQLException e) {
            if (conn.isClosed()) {
                throw e;
            }
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("error", asError(e));
            return out;
        }
    }

    /** One connection running the plan; settings are the COMETQL_* variables in {@code env}. */
    static Map<String, Object> session(Map<String, String> env, JsonArray plan) throws SQLException {
        String url = "jdbc:mariadb://" + env.get("COMETQL_HOST") + ":" + env.get("COMETQL_PORT") + "/"
                + env.get("COMETQL_DB");
        Properties props = new Properties();
        props.setProperty("user", env.get("COMETQL_USER"));
        props.setProperty("password", env.get("COMETQL_PASSWORD"));
        props.setProperty("connectTimeout", "5000");
        props.setProperty("socketTimeout", "10000");
        Map<String, Object> session = new LinkedHashMap<>();
        List<Object> results = new ArrayList<>();
        try (Connection conn = DriverManager.getConnection(url, props)) {
            session.put("connect_error", null);
            for (JsonElement step : plan) {
                results.add(run(conn, step.getAsJsonObject()));
            }
        } catch (SQLException e) {
            if (!results.isEmpty()) {
                throw e;  // the connection broke mid-plan: fail loudly
            }
            session.put("connect_error", asError(e));
        }
        session.put("results", results);
        return session;
    }

    static void print(Object value) {
        byte[] line = (GSON.toJson(value) + "\n").getBytes(StandardCharsets.UTF_8);
        System.out.write(line, 0, line.length);
        System.out.flush();
    }

    /**
     * One plan from stdin, settings from the environment; or, with --serve, one request per line
     * ({"env": {COMETQL_*...}, "plan": [...]}) answered by one line, so the tests start the JVM once.
     */
    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        if (args.length == 0) {
            print(session(System.getenv(), JsonParser.parseReader(in).getAsJsonArray()));
            return;
        }
        for (String line; (line = in.readLine()) != null; ) {
            JsonObject request = JsonParser.parseString(line).getAsJsonObject();
            Map<String, String> env = new LinkedHashMap<>();
            request.getAsJsonObject("env").entrySet().forEach(e -> env.put(e.getKey(), e.getValue().getAsString()));
            try {
                print(session(env, request.getAsJsonArray("plan")));
            } catch (Exception e) {
                StringWriter trace = new StringWriter();
                e.printStackTrace(new PrintWriter(trace));
                print(Map.of("failure", trace.toString()));
            }
        }
    }
}
