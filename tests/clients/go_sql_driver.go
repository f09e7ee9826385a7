// Runs a plan of statements through Go's database/sql with go-sql-driver/mysql and prints what it saw, as JSON.
//
// Why: this is how Go backends talk to MySQL, with the driver's defaults: a statement with
// arguments is a server-side prepared statement (COM_STMT_PREPARE/EXECUTE/CLOSE, binary
// rows), one without arguments is COM_QUERY. SELECT and SHOW go through db.Query, the rest
// through db.Exec, as Go code does. Settings come from COMETQL_HOST/PORT/USER/PASSWORD/DB;
// the plan is a JSON list on stdin: [{"sql": "...", "params": [...]}, ...]. Output:
// {"connect_error": null|{code,message,sqlstate}, "results": [...]} where each result is
// {"affected","insert_id","columns","rows"} or {"error": {code,message,sqlstate}} (this
// driver version does not expose the SQLSTATE: null). Built by the tests with Debian's
// golang-github-go-sql-driver-mysql-dev: GO111MODULE=off GOPATH=/usr/share/gocode go build.
package main

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

type sqlError struct {
	Code     uint16  `json:"code"`
	Message  string  `json:"message"`
	SQLState *string `json:"sqlstate"`
}

type result struct {
	Affected *int64     `json:"affected,omitempty"`
	InsertID *int64     `json:"insert_id,omitempty"`
	Columns  []string   `json:"columns"`
	Rows     [][]*string `json:"rows"`
	Error    *sqlError  `json:"error,omitempty"`
}

type session struct {
	ConnectError *sqlError `json:"connect_error"`
	Results      []any     `json:"results"`
}

type step struct {
	SQL    string `json:"sql"`
	Params []any  `json:"params"`
}

func asError(err error) *sqlError {
	var my *mysql.MySQLError
	if errors.As(err, &my) {
		return &sqlError{Code: my.Number, Message: my.Message}
	}
	return &sqlError{Code: 0, Message: err.Error()}
}

// params turns JSON numbers that are whole into int64, as Go code passes ids.
func params(in []any) []any {
	out := make([]any, len(in))
	for i, p := range in {
		if f, ok := p.(float64); ok && f == float64(int64(f)) {
			out[i] = int64(f)
		} else {
			out[i] = p
		}
	}
	return out
}

func query(db *sql.DB, s step) any {
	verb := strings.ToUpper(strings.Fields(s.SQL)[0])
	if verb != "SELECT" && verb != "SHOW" {
		res, err := db.Exec(s.SQL, params(s.Params)...)
		if err != nil {
			return map[string]any{"error": asError(err)}
		}
		affected, _ := res.RowsAffected()
		id, _ := res.LastInsertId()
		return result{Affected: &affected, InsertID: &id}
	}
	rows, err := db.Query(s.SQL, params(s.Params)...)
	if err != nil {
		return map[string]any{"error": asError(err)}
	}
	defer rows.Close()
	columns, _ := rows.Columns()
	out := result{Columns: columns, Rows: [][]*string{}}
	for rows.Next() {
		values := make([]sql.NullString, len(columns))
		ptrs := make([]any, len(columns))
		for i := range values {
			ptrs[i] = &values[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return map[string]any{"error": asError(err)}
		}
		row := make([]*string, len(columns))
		for i, v := range values {
			if v.Valid {
				row[i] = &values[i].String
			}
		}
		out.Rows = append(out.Rows, row)
	}
	if err := rows.Err(); err != nil {
		return map[string]any{"error": asError(err)}
	}
	var zero int64
	out.Affected, out.InsertID = &zero, &zero
	return out
}

func main() {
	var plan []step
	if err := json.NewDecoder(os.Stdin).Decode(&plan); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cfg := mysql.NewConfig()
	cfg.Net = "tcp"
	cfg.Addr = os.Getenv("COMETQL_HOST") + ":" + os.Getenv("COMETQL_PORT")
	cfg.User = os.Getenv("COMETQL_USER")
	cfg.Passwd = os.Getenv("COMETQL_PASSWORD")
	cfg.DBName = os.Getenv("COMETQL_DB")
	cfg.Timeout = 5 * time.Second
	cfg.ReadTimeout = 10 * time.Second
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	db.SetMaxOpenConns(1) // one connection, like the other drivers' sessions
	out := session{Results: []any{}}
	if err := db.Ping(); err != nil {
		out.ConnectError = asError(err)
	} else {
		for _, s := range plan {
			out.Results = append(out.Results, query(db, s))
		}
	}
	db.Close()
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		os.Exit(1)
	}
}
