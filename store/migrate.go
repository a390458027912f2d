package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
)

// CopyReport says what CopyToPostgres copied.
type CopyReport struct {
	Readings, KPIs, Points, Orphaned, Blobs int
	BlobBytes                               int64
}

// CopyToPostgres copies a state directory (the file backend's state file
// and the sources' own files) into the state database at dst, in one
// transaction. It refuses a database that already holds readings or
// history, so that it can never overwrite what replicas wrote; the state
// directory is only read.
func CopyToPostgres(ctx context.Context, dir string, dst *Store) (CopyReport, error) {
	var rep CopyReport
	if dst.pg == nil {
		return rep, errors.New("the destination is not a PostgreSQL store")
	}
	src, err := Load(dir)
	if err != nil {
		return rep, err
	}
	if _, err := os.Stat(filepath.Join(dir, FileName)); err != nil {
		return rep, fmt.Errorf("state directory %s: %w", dir, err)
	}
	type blob struct {
		source, name string
		data         []byte
	}
	var blobs []blob
	sourcesDir := filepath.Join(dir, "sources")
	entries, err := os.ReadDir(sourcesDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return rep, fmt.Errorf("%s: %w", sourcesDir, err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		files, err := os.ReadDir(filepath.Join(sourcesDir, e.Name()))
		if err != nil {
			return rep, err
		}
		for _, f := range files {
			path := filepath.Join(sourcesDir, e.Name(), f.Name())
			if !f.Type().IsRegular() || strings.Contains(f.Name(), ".tmp-") { // a save a crash interrupted
				continue
			}
			fi, err := f.Info()
			if err != nil {
				return rep, err
			}
			if fi.Size() > MaxSourceStateBytes {
				return rep, fmt.Errorf("%s: %d bytes, more than the %d the database keeps per blob", path, fi.Size(), MaxSourceStateBytes)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return rep, err
			}
			blobs = append(blobs, blob{e.Name(), f.Name(), data})
		}
	}

	err = pgx.BeginFunc(ctx, dst.pg.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", writerLockKey); err != nil {
			return err
		}
		var n int64
		if err := tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM `+Schema+`.readings) + (SELECT count(*) FROM `+Schema+`.history)`).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("the state database already holds %d readings and history points; migrate-state copies into an empty one only, so that nothing a replica wrote is overwritten", n)
		}
		var seq int64
		if err := tx.QueryRow(ctx, `SELECT nextval('`+Schema+`.change_seq')`).Scan(&seq); err != nil {
			return err
		}
		in := src.Inputs()
		names := make([]string, 0, len(in.Readings))
		for name := range in.Readings {
			names = append(names, name)
		}
		sort.Strings(names)
		var rrows [][]any
		for _, name := range names {
			r := in.Readings[name]
			data, err := json.Marshal(r)
			if err != nil {
				return err
			}
			seq++
			rrows = append(rrows, []any{name, r.At.UnixMicro(), string(data), seq})
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{Schema, "readings"}, []string{"source", "at_us", "data", "seq"}, pgx.CopyFromRows(rrows)); err != nil {
			return fmt.Errorf("readings: %w", err)
		}
		ids := make([]string, 0, len(in.History))
		for id := range in.History {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		var hrows [][]any
		for _, id := range ids {
			var last int64 = -1 << 62
			for _, p := range in.History[id] {
				t := p.T.UnixMicro()
				if t <= last {
					continue // the file kept milliseconds; a duplicate is one point
				}
				last = t
				seq++
				hrows = append(hrows, []any{id, t, p.V, seq})
			}
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{Schema, "history"}, []string{"kpi", "t_us", "v", "seq"}, pgx.CopyFromRows(hrows)); err != nil {
			return fmt.Errorf("history: %w", err)
		}
		if _, err := tx.Exec(ctx, `SELECT setval('`+Schema+`.change_seq', $1)`, seq); err != nil {
			return err
		}
		for key, since := range src.orphaned {
			if _, err := tx.Exec(ctx, `INSERT INTO `+Schema+`.orphaned (key, since_us) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`, key, since.UnixMicro()); err != nil {
				return err
			}
		}
		for _, b := range blobs {
			if _, err := tx.Exec(ctx, `INSERT INTO `+Schema+`.source_state (source, name, data) VALUES ($1, $2, $3)
ON CONFLICT (source, name) DO UPDATE SET data = excluded.data, updated_at = now()`, b.source, b.name, b.data); err != nil {
				return fmt.Errorf("source %s state %s: %w", b.source, b.name, err)
			}
			rep.Blobs++
			rep.BlobBytes += int64(len(b.data))
		}
		rep.Readings, rep.KPIs, rep.Points, rep.Orphaned = len(rrows), len(ids), len(hrows), len(src.orphaned)
		return nil
	})
	if err != nil {
		return CopyReport{}, fmt.Errorf("state database: %w", err)
	}
	// The destination store takes what was copied.
	dst.pg.resync = true
	return rep, dst.pgSync(nil)
}
