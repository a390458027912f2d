// Package testdb starts real database servers for tests — Debian's
// PostgreSQL and MariaDB — each as an unprivileged process on a directory of
// its own and a loopback port, stopped and removed when the test ends. A
// missing server fails the test (`make deps` installs them); it never skips.
package testdb

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql" // the driver of MariaDB servers
	_ "github.com/jackc/pgx/v5/stdlib" // the driver of PostgreSQL servers

	"github.com/bakhmach-hub/kpi_exporter/internal/testproc"
)

// Server is a running database server.
type Server struct {
	// DSN connects as the server's superuser to the database "kpi".
	DSN string
	// Driver is the database/sql driver name for DSN.
	Driver string
	dir    string
	cmd    *exec.Cmd
	log    *bytes.Buffer
	// bin and args start the server again (Restart).
	bin  string
	args []string
	// stop is the signal of a clean, prompt shutdown.
	stop syscall.Signal
}

// nobody runs the server unprivileged when the tests run as root
// (PostgreSQL refuses to run as root at all).
func nobody() *syscall.Credential {
	if os.Geteuid() != 0 {
		return nil
	}
	return &syscall.Credential{Uid: 65534, Gid: 65534}
}

// dir makes a directory the server's user may write: t.TempDir's parents
// are private to the test's user.
func dir(t testing.TB, name string) string {
	t.Helper()
	d, err := os.MkdirTemp("", "kpi-"+name+"-")
	if err != nil {
		t.Fatal(err)
	}
	if cred := nobody(); cred != nil {
		if err := os.Chown(d, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func freePort(t testing.TB) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(testproc.FreeAddr(t))
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	if cred := nobody(); cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	return cmd
}

func find(t testing.TB, pattern, pkg string) string {
	t.Helper()
	m, _ := filepath.Glob(pattern)
	if len(m) == 0 {
		t.Fatalf("%s is needed (Debian's %s): run `make deps`", pattern, pkg)
	}
	return m[len(m)-1]
}

// start runs the server and waits until a connection answers.
func (s *Server) start(t testing.TB, cmd *exec.Cmd) {
	t.Helper()
	s.log = &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s.cmd = cmd
	t.Cleanup(s.Stop)
	deadline := time.Now().Add(60 * time.Second)
	for {
		db, err := sql.Open(s.Driver, s.DSN)
		if err != nil {
			t.Fatal(err) // an unknown driver: waiting does not help
		}
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			err = db.PingContext(ctx)
			cancel()
			_ = db.Close()
		}
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the %s server did not answer: %v\n%s", s.Driver, err, s.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop stops the server (SIGTERM, for PostgreSQL SIGINT, its "fast"
// shutdown that ends the sessions, then SIGKILL after 10 s).
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	// A server that is already gone answers neither: nothing to do.
	sig := s.stop
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	_ = s.cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
	s.cmd = nil
}

// Restart starts a stopped PostgreSQL server again on the same data and
// port, and waits until it answers.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	s.start(t, command(s.bin, s.args...))
}

// NewDatabase creates another database on the server and returns its DSN.
func (s *Server) NewDatabase(t testing.TB, name string) string {
	t.Helper()
	if _, err := s.Open(t).Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	return strings.Replace(s.DSN, "/kpi?", "/"+name+"?", 1)
}

// Log returns what the server printed.
func (s *Server) Log() string { return s.log.String() }

// Open connects to the server's test database.
func (s *Server) Open(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open(s.Driver, s.DSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// Postgres starts Debian's PostgreSQL: initdb with trust authentication on
// loopback, fsync off, a database "kpi". The driver is pgx's "pgx".
func Postgres(t testing.TB) *Server {
	t.Helper()
	initdb := find(t, "/usr/lib/postgresql/*/bin/initdb", "postgresql")
	bin := filepath.Dir(initdb)
	data := dir(t, "pg")
	out, err := command(initdb, "-D", filepath.Join(data, "db"), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C").CombinedOutput()
	if err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	port := freePort(t)
	s := &Server{Driver: "pgx", dir: data, stop: syscall.SIGINT,
		DSN: fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)}
	s.bin, s.args = filepath.Join(bin, "postgres"), []string{"-D", filepath.Join(data, "db"), "-h", "127.0.0.1", "-p", strconv.Itoa(port),
		"-k", data, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "TimeZone=UTC"}
	s.start(t, command(s.bin, s.args...))
	db := s.Open(t)
	if _, err := db.Exec("CREATE DATABASE kpi"); err != nil {
		t.Fatal(err)
	}
	s.DSN = strings.Replace(s.DSN, "/postgres?", "/kpi?", 1)
	return s
}

// MariaDB starts Debian's MariaDB: a fresh data directory, root without a
// password on a Unix socket and loopback TCP, a database "kpi". The driver
// is go-sql-driver's "mysql".
func MariaDB(t testing.TB) *Server {
	t.Helper()
	mariadbd := find(t, "/usr/sbin/mariadbd", "mariadb-server")
	install := find(t, "/usr/bin/mariadb-install-db", "mariadb-server")
	data := dir(t, "mariadb")
	user := "root"
	if cred := nobody(); cred != nil {
		user = "nobody"
	}
	out, err := command(install, "--no-defaults", "--datadir="+filepath.Join(data, "db"), "--user="+user,
		"--auth-root-authentication-method=normal", "--skip-test-db").CombinedOutput()
	if err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	port := freePort(t)
	sock := filepath.Join(data, "mariadb.sock")
	s := &Server{Driver: "mysql", dir: data, DSN: "root@unix(" + sock + ")/mysql?parseTime=true&loc=UTC"}
	s.start(t, command(mariadbd, "--no-defaults", "--datadir="+filepath.Join(data, "db"), "--socket="+sock,
		"--port="+strconv.Itoa(port), "--bind-address=127.0.0.1", "--skip-name-resolve", "--innodb-flush-log-at-trx-commit=0",
		"--default-time-zone=+00:00", "--pid-file="+filepath.Join(data, "mariadb.pid"), "--user="+user))
	db := s.Open(t)
	if _, err := db.Exec("CREATE DATABASE kpi"); err != nil {
		t.Fatal(err)
	}
	s.DSN = strings.Replace(s.DSN, ")/mysql?", ")/kpi?", 1)
	return s
}
