// Command fill makes a SQLite database in the example schema of the sql
// source (examples/sql/schema.sqlite.sql) holding a product's synthetic
// users and events over the last 90 days, and with -live keeps adding the
// sessions of returning and new users as time passes, so that the KPIs read
// from it move:
//
//	go run ./examples/sql/fill -out product.db -live
//
// `make try-sql` runs it beside the daemon on examples/sql/kpis.yaml.
package main

import (
	"database/sql"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	_ "modernc.org/sqlite"

	"github.com/bakhmach-hub/kpi_exporter/examples/sql/synth"
)

func main() {
	out := flag.String("out", "product.db", "the SQLite database to create (replaced if it exists)")
	users := flag.Int("users", 500, "users who signed up over the last 90 days")
	live := flag.Bool("live", false, "keep adding sessions as time passes, until interrupted")
	every := flag.Duration("every", 5*time.Second, "with -live, how often to add sessions")
	schema := flag.String("schema", "examples/sql/schema.sqlite.sql", "the schema file")
	ready := flag.String("ready", "", "a file to create once the history is written")
	flag.Parse()

	ddl, err := os.ReadFile(*schema)
	if err != nil {
		log.Fatal(err)
	}
	os.Remove(*out)
	db, err := sql.Open("sqlite", *out+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)")
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	if _, err := db.Exec(string(ddl)); err != nil {
		log.Fatalf("%s: %v", *schema, err)
	}
	now := time.Now().UTC()
	d := synth.Generate(uint64(now.Unix()), *users, now)
	tx, err := db.Begin()
	if err != nil {
		log.Fatal(err)
	}
	for _, u := range d.Users {
		if _, err := tx.Exec("INSERT INTO users VALUES (?, ?)", u.ID, u.Created.Format(time.DateTime)); err != nil {
			log.Fatal(err)
		}
	}
	for _, e := range d.Events {
		if _, err := tx.Exec("INSERT INTO events VALUES (?, ?, ?)", e.UserID, e.Name, e.At.Format(time.DateTime)); err != nil {
			log.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %d users, %d events up to %s\n", *out, len(d.Users), len(d.Events), now.Format(time.DateTime))
	if *ready != "" {
		if err := os.WriteFile(*ready, nil, 0o644); err != nil {
			log.Fatal(err)
		}
	}
	if !*live {
		return
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	r := rand.New(rand.NewPCG(uint64(now.UnixNano()), 1))
	next := int64(len(d.Users) + 1)
	tick := time.NewTicker(*every)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case t := <-tick.C:
			t = t.UTC().Truncate(time.Second)
			var rows []string
			// A few returning users start and end a short session, and now
			// and then someone new signs up.
			for i := r.IntN(4); i > 0; i-- {
				u := 1 + r.Int64N(next-1)
				rows = append(rows, fmt.Sprintf("(%d,'session_start','%s')", u, t.Add(-2*time.Second).Format(time.DateTime)),
					fmt.Sprintf("(%d,'%s','%s')", u, synth.Features[r.IntN(len(synth.Features))], t.Add(-time.Second).Format(time.DateTime)),
					fmt.Sprintf("(%d,'session_end','%s')", u, t.Format(time.DateTime)))
			}
			if r.IntN(6) == 0 {
				if _, err := db.Exec("INSERT INTO users VALUES (?, ?)", next, t.Format(time.DateTime)); err != nil {
					log.Fatal(err)
				}
				rows = append(rows, fmt.Sprintf("(%d,'session_start','%s')", next, t.Format(time.DateTime)))
				next++
			}
			if len(rows) > 0 {
				if _, err := db.Exec("INSERT INTO events VALUES " + strings.Join(rows, ",")); err != nil {
					log.Fatal(err)
				}
			}
		}
	}
}
