// Command kpi_exporter turns a KPI catalogue into live Prometheus series.
//
// main is wiring only: settings, logger, the enabled source types (blank
// imports, like database drivers), signals and the sub-commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/kelseyhightower/envconfig"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"
	"go.uber.org/zap/zapcore"

	"github.com/bakhmach-hub/kpi_exporter/app"
	"github.com/bakhmach-hub/kpi_exporter/collectors"
	"github.com/bakhmach-hub/kpi_exporter/deploy/alertmanager"
	promrules "github.com/bakhmach-hub/kpi_exporter/deploy/prometheus"
	"github.com/bakhmach-hub/kpi_exporter/exporter"
	"github.com/bakhmach-hub/kpi_exporter/grafana"
	"github.com/bakhmach-hub/kpi_exporter/internal/redact"
	"github.com/bakhmach-hub/kpi_exporter/kpi"
	"github.com/bakhmach-hub/kpi_exporter/report"
	"github.com/bakhmach-hub/kpi_exporter/store"

	// Source types: each registers itself.
	_ "github.com/bakhmach-hub/kpi_exporter/collectors/actions"
	_ "github.com/bakhmach-hub/kpi_exporter/collectors/coverage"
	_ "github.com/bakhmach-hub/kpi_exporter/collectors/derived"
	_ "github.com/bakhmach-hub/kpi_exporter/collectors/file"
	_ "github.com/bakhmach-hub/kpi_exporter/collectors/github"
	_ "github.com/bakhmach-hub/kpi_exporter/collectors/githubbilling"
	_ "github.com/bakhmach-hub/kpi_exporter/collectors/promql"
	_ "github.com/bakhmach-hub/kpi_exporter/collectors/push"
	_ "github.com/bakhmach-hub/kpi_exporter/collectors/sql"
	_ "github.com/bakhmach-hub/kpi_exporter/collectors/stripe"
)

// Settings are read from the environment (prefix KPI_); flags override them.
type Settings struct {
	ListenAddress string `envconfig:"LISTEN_ADDRESS" default:":10050"`
	Config        string `envconfig:"CONFIG"`
	StateDir      string `envconfig:"STATE_DIR" default:"data"`
	WebConfigFile string `envconfig:"WEB_CONFIG_FILE"`
	LogLevel      string `envconfig:"LOG_LEVEL" default:"info"`
	LogFormat     string `envconfig:"LOG_FORMAT" default:"json"`
	// StateSaveInterval bounds how often the state file is written.
	StateSaveInterval time.Duration `envconfig:"STATE_SAVE_INTERVAL" default:"5s"`
	// PushTokensFile holds the push API's bearer tokens; unset disables it.
	PushTokensFile string `envconfig:"PUSH_TOKENS_FILE"`
	// OrphanRetention is how long the state of sources and KPIs that left
	// the catalogue is kept before it is dropped.
	OrphanRetention time.Duration `envconfig:"STATE_ORPHAN_RETENTION" default:"720h"`
	// WebIdleTimeout closes idle keep-alive connections; WebReadTimeout
	// bounds reading a request, its body included.
	WebIdleTimeout time.Duration `envconfig:"WEB_IDLE_TIMEOUT" default:"2m"`
	WebReadTimeout time.Duration `envconfig:"WEB_READ_TIMEOUT" default:"30s"`
	// StateDSN / StateDSNFile select the PostgreSQL state backend (shared
	// by replicas) instead of the state directory.
	StateDSN     string `envconfig:"STATE_DSN"`
	StateDSNFile string `envconfig:"STATE_DSN_FILE"`
	// StateRefreshInterval is how often a replica takes the others' changes.
	StateRefreshInterval time.Duration `envconfig:"STATE_REFRESH_INTERVAL" default:"1s"`
	// HAReplicaID names this replica among those sharing the database
	// (default: the host name, the pod's name in Kubernetes).
	HAReplicaID string `envconfig:"HA_REPLICA_ID"`
	// HALeaseInterval is how often leases are renewed and taken.
	HALeaseInterval time.Duration `envconfig:"HA_LEASE_INTERVAL" default:"2s"`
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if version.Version == "" {
		version.Version = "0.1.0-dev"
	}
	var s Settings
	if err := envconfig.Process("KPI", &s); err != nil {
		fmt.Fprintln(stderr, "kpi_exporter: settings:", err)
		return 2
	}

	a := kingpin.New("kpi_exporter", "Turns a KPI catalogue into live Prometheus series: value, target in force, attainment, zone and trend of every KPI.")
	a.UsageWriter(stderr)
	a.ErrorWriter(stderr)
	a.Version(version.Print("kpi_exporter"))
	a.HelpFlag.Short('h')
	config := a.Flag("config", "Catalogue file (YAML); empty uses the embedded default catalogue. Env: KPI_CONFIG.").Default(s.Config).String()
	stateDir := a.Flag("state-dir", "Directory for last values and KPI history; empty keeps state in memory only. Env: KPI_STATE_DIR.").Default(s.StateDir).String()
	logLevel := a.Flag("log.level", "Log level: debug, info, warn or error. Env: KPI_LOG_LEVEL.").Default(s.LogLevel).Enum("debug", "info", "warn", "error")
	logFormat := a.Flag("log.format", "Log format: json or console. Env: KPI_LOG_FORMAT.").Default(s.LogFormat).Enum("json", "console")
	webFlags := kingpinflag.AddFlags(a, s.ListenAddress)
	var db dbFlags
	a.Flag("state.dsn-file", "File holding the PostgreSQL connection string of a state database shared by replicas (instead of --state-dir). Env: KPI_STATE_DSN_FILE, or the string itself in KPI_STATE_DSN.").Default(s.StateDSNFile).StringVar(&db.file)
	a.Flag("state.dsn", "PostgreSQL connection string of a shared state database; visible in the process list, so prefer KPI_STATE_DSN or --state.dsn-file. Env: KPI_STATE_DSN.").Default(s.StateDSN).StringVar(&db.dsn)

	serveCmd := a.Command("serve", "Serve /metrics and the status page (the default).").Default()
	serveCmd.Flag("state.refresh-interval", "With a state database: how often this replica takes the other replicas' changes. Env: KPI_STATE_REFRESH_INTERVAL.").Default(s.StateRefreshInterval.String()).DurationVar(&s.StateRefreshInterval)
	serveCmd.Flag("ha.replica-id", "With a state database: this replica's name among those sharing it (default the host name). Env: KPI_HA_REPLICA_ID.").Default(s.HAReplicaID).StringVar(&s.HAReplicaID)
	serveCmd.Flag("ha.lease-interval", "With a state database: how often source leases are renewed and taken; a replica counts as gone after three. Env: KPI_HA_LEASE_INTERVAL.").Default(s.HALeaseInterval.String()).DurationVar(&s.HALeaseInterval)
	pushTokens := serveCmd.Flag("push.tokens-file", "File of bearer tokens (one per line) for the push API POST /api/v1/values; unset disables it. Env: KPI_PUSH_TOKENS_FILE.").Default(s.PushTokensFile).String()
	checkCmd := a.Command("check", "Validate the catalogue (and the web config file, if set) and exit non-zero on any error.")
	onceCmd := a.Command("once", "Run every enabled source once and print the scorecard as a table.")
	failOn := onceCmd.Flag("fail-on", "Exit 1 when a KPI is in this zone or worse: red or yellow (for CI gates).").Default("").Enum("", "red", "yellow")
	onceTimeout := onceCmd.Flag("timeout", "Overall time limit for the sources' runs.").Default("5m").Duration()
	generateCmd := a.Command("generate", "Generate artefacts from the catalogue.")
	rulesCmd := generateCmd.Command("rules", "Write the Prometheus recording and alerting rules (the same for any catalogue: per-KPI delays and severity come from the exporter).")
	rulesOut := rulesCmd.Flag("out", "Rule file to write; - for standard output.").Default("-").String()
	amCmd := generateCmd.Command("alertmanager", "Write an Alertmanager configuration that routes each KPI's alerts to its owner's receiver.")
	amOut := amCmd.Flag("out", "File to write; - for standard output.").Default("-").String()
	var amOpts alertmanager.Options
	amCmd.Flag("owner-url", "Webhook URL of each owner's receiver; {owner} is replaced by the owner.").Default("http://alert-receiver.example.invalid/kpi/{owner}").StringVar(&amOpts.OwnerURL)
	amCmd.Flag("default-url", "Webhook URL of the default receiver.").Default("http://alert-receiver.example.invalid/kpi/default").StringVar(&amOpts.DefaultURL)
	amCmd.Flag("group-wait", "The route's group_wait.").Default("30s").SetValue(durationFlag{&amOpts.GroupWait})
	amCmd.Flag("group-interval", "The route's group_interval.").Default("5m").SetValue(durationFlag{&amOpts.GroupInterval})
	amCmd.Flag("repeat-interval", "The route's repeat_interval.").Default("4h").SetValue(durationFlag{&amOpts.RepeatInterval})
	dashCmd := generateCmd.Command("dashboards", "Write the Grafana dashboards of the catalogue as JSON files.")
	dashOut := dashCmd.Flag("out", "Directory to write the dashboards into.").Required().String()
	rulesJob := rulesCmd.Flag("job-selector", "Label matchers selecting the exporter's targets for KpiExporterDown, e.g. job=\"kpi\"; empty: any down target that exported kpi_exporter_build_info in the last day.").Default("").String()
	var rulesOpts promrules.Options
	rulesCmd.Flag("alert.trend-for", "How long a KPI must worsen before KpiWorseningTrend fires.").Default("1d").SetValue(durationFlag{&rulesOpts.TrendFor})
	rulesCmd.Flag("alert.off-track-for", "How long a KPI's forecast must end its target period red before KpiOffTrack fires.").Default("6h").SetValue(durationFlag{&rulesOpts.OffTrackFor})
	rulesCmd.Flag("alert.stale-for", "How long a KPI's value must be stale before KpiValueStale fires.").Default("15m").SetValue(durationFlag{&rulesOpts.StaleFor})
	rulesCmd.Flag("alert.collector-for", "How long a source must fail before KpiCollectorFailing fires.").Default("30m").SetValue(durationFlag{&rulesOpts.CollectorFor})
	rulesCmd.Flag("alert.absent-for", "How long a KPI must be missing before KpiAbsent fires.").Default("15m").SetValue(durationFlag{&rulesOpts.AbsentFor})
	rulesCmd.Flag("alert.down-for", "How long the exporter must be down before KpiExporterDown fires.").Default("5m").SetValue(durationFlag{&rulesOpts.DownFor})
	rulesCmd.Flag("alert.reload-for", "How long a failed catalogue load must last before KpiConfigReloadFailed fires.").Default("10m").SetValue(durationFlag{&rulesOpts.ReloadFor})
	rulesFormat := rulesCmd.Flag("format", "rulefile (for rule_files) or prometheusrule (a Prometheus Operator PrometheusRule).").Default("rulefile").Enum("rulefile", "prometheusrule")
	migrateCmd := a.Command("migrate-state", "Copy a state directory (--state-dir) into an empty PostgreSQL state database (--state.dsn-file or KPI_STATE_DSN), creating its schema.")
	reportCmd := a.Command("report", "Print the scorecard of a week, month or quarter from the stored history (the Weekly Review and Monthly Business Review).")
	reportPeriod := reportCmd.Flag("period", "Length of the period: week (ISO, Monday to Sunday), month or quarter (three months from the plan start).").Default("week").Enum("week", "month", "quarter")
	reportAt := reportCmd.Flag("at", "A day (2006-01-02) or RFC 3339 time inside the period to report; default the last complete period.").String()
	reportFormat := reportCmd.Flag("format", "Output format: markdown or html.").Default("markdown").Enum("markdown", "html")
	rulesLabels := rulesCmd.Flag("label", "A label of the PrometheusRule (repeatable), e.g. release=prometheus.").StringMap()

	cmd, err := a.Parse(args)
	if err != nil {
		fmt.Fprintln(stderr, "kpi_exporter:", err)
		return 2
	}
	if *webFlags.WebConfigFile == "" {
		*webFlags.WebConfigFile = s.WebConfigFile
	}
	logger, err := newLogger(*logLevel, *logFormat, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "kpi_exporter:", err)
		return 2
	}
	defer logger.Sync()

	switch cmd {
	case checkCmd.FullCommand():
		return check(*config, *webFlags.WebConfigFile, stdout, stderr)
	case onceCmd.FullCommand():
		return once(*config, *stateDir, *failOn, *onceTimeout, logger, stdout, stderr)
	case amCmd.FullCommand():
		return generateAlertmanager(*config, amOpts, *amOut, stdout, stderr)
	case dashCmd.FullCommand():
		return generateDashboards(*config, *dashOut, stdout, stderr)
	case rulesCmd.FullCommand():
		rulesOpts.JobSelector = *rulesJob
		return generateRules(rulesOpts, *rulesOut, *rulesFormat, *rulesLabels, stdout, stderr)
	case reportCmd.FullCommand():
		return printReport(*config, *stateDir, db, report.Period(*reportPeriod), *reportAt, *reportFormat, time.Now(), stdout, stderr)
	case migrateCmd.FullCommand():
		return migrateState(*stateDir, db, stdout, stderr)
	case serveCmd.FullCommand():
		return serve(*config, *stateDir, db, *pushTokens, s, webFlags, logger)
	}
	return 2
}

func newLogger(level, format string, w io.Writer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, err
	}
	ec := zap.NewProductionEncoderConfig()
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	if format == "console" {
		ec.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	} else {
		enc = zapcore.NewJSONEncoder(ec)
	}
	// Every secret the daemon was given is masked in every log line.
	return zap.New(redact.Core(zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), lvl))), nil
}

func check(config, webConfig string, stdout, stderr io.Writer) int {
	l, err := app.Load(config, "", zap.NewNop())
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if webConfig != "" {
		if err := web.Validate(webConfig); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", webConfig, err)
			return 1
		}
	}
	c := l.Catalogue
	var disabled []string
	var waiting []string
	for _, s := range c.Sources {
		switch {
		case s.Enabled:
		case s.EnableWhenSet != "":
			waiting = append(waiting, fmt.Sprintf("%s (when %s is set)", s.Name, s.EnableWhenSet))
		default:
			disabled = append(disabled, s.Name)
		}
	}
	name := config
	if name == "" {
		name = "embedded default catalogue"
	}
	// Push sources are enabled too, though they have no polling job.
	fmt.Fprintf(stdout, "%s: OK: %d KPIs, %d sources (%d enabled)\n", name, len(c.KPIs), len(c.Sources), len(l.Jobs)+len(l.Passive))
	if len(disabled) > 0 {
		fmt.Fprintf(stdout, "disabled sources (their KPIs read unknown, or their fallback): %s\n", strings.Join(disabled, ", "))
	}
	if len(waiting) > 0 {
		fmt.Fprintf(stdout, "sources waiting for their environment variable (their KPIs read their fallback, or unknown): %s\n", strings.Join(waiting, ", "))
	}
	return 0
}

func once(config, stateDir, failOn string, timeout time.Duration, logger *zap.Logger, stdout, stderr io.Writer) int {
	var progress func(string, int, int, string)
	if isTerminal(stderr) {
		progress = progressBar(stderr)
	}
	// Sources computed from others (derived) run after the others, on what
	// they measured.
	var latest collectors.Latest
	l, err := app.LoadWith(config, "", logger, app.LoadOptions{Progress: progress, Latest: func() collectors.Latest { return latest }})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	// Earlier history (for trends) is read when the state directory has
	// it; once never writes there.
	st, _ := store.Open("")
	if stateDir != "" {
		loaded, err := store.Load(stateDir)
		if err != nil {
			fmt.Fprintln(stderr, "state ignored:", err)
		} else {
			st = loaded
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var first, then []collectors.Job
	for _, j := range l.Jobs {
		if _, ok := j.Collector.(collectors.Dependent); ok {
			then = append(then, j)
		} else {
			first = append(first, j)
		}
	}
	for _, phase := range [][]collectors.Job{first, then} {
		in := st.Inputs()
		latest = app.LatestOf(in.Readings, kpi.Evaluate(l.Catalogue, in, time.Now()))
		for _, r := range collectors.RunAll(ctx, phase) {
			if r.Err != nil {
				fmt.Fprintf(stderr, "source %s: %v\n", r.Source, r.Err)
				continue
			}
			st.SetReading(r.Source, kpi.Reading{At: r.End, Measurements: r.Measurements})
		}
	}
	sc := kpi.Evaluate(l.Catalogue, st.Inputs(), time.Now())
	printScorecard(stdout, sc)

	worst := map[kpi.Zone]int{}
	for _, r := range sc.Results {
		worst[r.Zone]++
	}
	switch {
	case failOn == "red" && worst[kpi.Red] > 0,
		failOn == "yellow" && worst[kpi.Red]+worst[kpi.Yellow] > 0:
		fmt.Fprintf(stderr, "kpi_exporter: %d red and %d yellow KPIs (--fail-on %s)\n", worst[kpi.Red], worst[kpi.Yellow], failOn)
		return 1
	}
	return 0
}

func printScorecard(w io.Writer, sc kpi.Scorecard) {
	results := append([]kpi.Result(nil), sc.Results...)
	sort.SliceStable(results, func(i, j int) bool { return results[i].KPI.Domain < results[j].KPI.Domain })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DOMAIN\tKPI\tVALUE\tTARGET\tATTAINMENT\tZONE\tTREND")
	counts := map[kpi.Zone]int{}
	for _, r := range results {
		k := r.KPI
		value, target, attain := "-", "-", "-"
		if r.HasValue {
			value = kpi.FormatValue(k.Unit, r.Value)
			if r.Stale {
				value += " (stale)"
			}
		}
		if r.HasTarget {
			target = kpi.FormatValue(k.Unit, r.Target)
		}
		if r.HasAttainment {
			attain = kpi.FormatAttainment(r.Attainment)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.Domain, k.Name, value, target, attain, r.Zone, kpi.TrendText(r.Trend))
		counts[r.Zone]++
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%d KPIs: %d green, %d yellow, %d red, %d unknown\n",
		len(results), counts[kpi.Green], counts[kpi.Yellow], counts[kpi.Red], counts[kpi.Unknown])
}

// dbFlags select the PostgreSQL state backend.
type dbFlags struct{ dsn, file string }

// resolve returns the DSN ("" for the file backend), read from its file
// when one is named, and registers it and its password as secrets.
func (d dbFlags) resolve() (string, error) {
	dsn := d.dsn
	if d.file != "" {
		b, err := os.ReadFile(d.file)
		if err != nil {
			return "", fmt.Errorf("state database DSN file: %w", err)
		}
		if dsn = strings.TrimSpace(string(b)); dsn == "" {
			return "", fmt.Errorf("state database DSN file %s is empty", d.file)
		}
	}
	for _, secret := range store.DSNSecrets(dsn) {
		redact.Register(secret)
	}
	return dsn, nil
}

// openStateDB connects to the state database, waiting for it (a replica
// started before its database, or during a database restart) until it
// answers or a signal stops the wait.
func openStateDB(dsn string, sigs <-chan os.Signal, logger *zap.Logger) (*store.Store, bool) {
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		st, err := store.OpenPostgres(ctx, dsn, store.PostgresOptions{})
		cancel()
		if err == nil {
			return st, true
		}
		logger.Error("cannot open the state database; retrying", zap.Error(err), zap.Int("attempt", attempt))
		select {
		case sig := <-sigs:
			logger.Info("stopped while waiting for the state database", zap.String("signal", sig.String()))
			return nil, false
		case <-time.After(min(time.Duration(attempt)*time.Second, 10*time.Second)):
		}
	}
}

func serve(config, stateDir string, db dbFlags, pushTokensFile string, s Settings, webFlags *web.FlagConfig, logger *zap.Logger) int {
	dsn, err := db.resolve()
	if err != nil {
		logger.Error("state database", zap.Error(err))
		return 1
	}
	saveInterval, orphanRetention := s.StateSaveInterval, s.OrphanRetention
	// Signals are ours from the first instruction: a SIGHUP while the state
	// loads would otherwise end the process (Go's default). A reload asked
	// for during start-up runs once start-up is done; a SIGTERM stops it.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	logger.Info("starting kpi_exporter", zap.String("version", version.Info()), zap.String("build_context", version.BuildContext()))
	var tokens []string
	if pushTokensFile != "" {
		var err error
		if tokens, err = readTokens(pushTokensFile); err != nil {
			logger.Error("push API", zap.Error(err))
			return 1
		}
		logger.Info("push API enabled", zap.Int("tokens", len(tokens)))
		if stateDir == "" && dsn == "" {
			logger.Warn("push API without a state directory: pushed values live in memory only and are lost on restart")
		}
	}
	var running atomic.Pointer[app.App]
	var state atomic.Pointer[store.Store]
	exp := exporter.New(exporter.Options{
		PushTokens: tokens,
		Push: func(ctx context.Context, values []exporter.PushValue) error {
			a := running.Load()
			if a == nil {
				return errors.New("still starting")
			}
			return a.Push(ctx, values)
		},
		History: func(id string) []kpi.Point {
			if st := state.Load(); st != nil {
				return st.History(id)
			}
			return nil
		},
		ErrorLog: zap.NewStdLog(logger.With(zap.String("component", "metrics"))),
		Reload: func(ctx context.Context) error {
			a := running.Load()
			if a == nil {
				return errors.New("still starting")
			}
			return a.Reload(ctx)
		},
	})

	// Serve at once, so that liveness holds while state loads; readiness
	// follows once the first snapshot is published.
	// Idle keep-alive connections and slow bodies time out, as with every
	// exporter-toolkit server; a scrape's response has no write timeout.
	srv := &http.Server{Handler: exp.Handler(), ReadHeaderTimeout: min(10*time.Second, s.WebReadTimeout), ReadTimeout: s.WebReadTimeout, IdleTimeout: s.WebIdleTimeout}
	serveErr := make(chan error, 1)
	go func() {
		serveErr <- web.ListenAndServe(srv, webFlags, slog.New(zapslog.NewHandler(logger.Core())))
	}()

	var st *store.Store
	var leases *store.Leases
	if dsn != "" {
		var ok bool
		if st, ok = openStateDB(dsn, sigs, logger); !ok {
			return 1
		}
		defer st.Close()
		id := s.HAReplicaID
		host, _ := os.Hostname()
		if id == "" {
			id = host
		}
		leases = st.NewLeases(id, host)
		leases.Tick, leases.TTL = s.HALeaseInterval, 3*s.HALeaseInterval
		logger.Info("state kept in PostgreSQL, shared with the other replicas", zap.String("replica", id),
			zap.Int("schema_version", store.SchemaVersion()))
	} else {
		var err error
		st, err = store.Open(stateDir)
		var corrupt *store.CorruptError
		switch {
		case errors.As(err, &corrupt):
			logger.Error("state file was corrupt; starting without it", zap.Error(err))
		case err != nil:
			logger.Error("cannot open the state directory", zap.Error(err))
			return 1
		}
	}
	state.Store(st)
	a, err := app.New(app.Config{CatalogueFile: config, Store: st, Exporter: exp, Logger: logger, SaveInterval: saveInterval, OrphanRetention: orphanRetention,
		Leases: leases, RefreshInterval: s.StateRefreshInterval})
	if err != nil {
		logger.Error("cannot load the catalogue", zap.Error(err))
		return 1
	}
	running.Store(a)
	exp.SetReady()

	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- a.Run(ctx) }()

	code := 0
loop:
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				if err := a.Reload(context.Background()); err == nil {
					logger.Info("catalogue reloaded on SIGHUP")
				}
				continue
			}
			logger.Info("shutting down", zap.String("signal", sig.String()))
			break loop
		case err := <-serveErr:
			logger.Error("HTTP server failed", zap.Error(err))
			code = 1
			break loop
		}
	}
	// Stop serving, then stop the sources and persist.
	shutdownCtx, stop := context.WithTimeout(context.Background(), 10*time.Second)
	defer stop()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		logger.Warn("HTTP server did not shut down cleanly", zap.Error(err))
	}
	cancel()
	if err := <-runDone; err != nil {
		logger.Error("stopped; the state could NOT be saved: the values since the last save are lost", zap.String("state_dir", stateDir), zap.Error(err))
		return 1
	}
	if dsn != "" {
		logger.Info("stopped; state committed to the state database")
	} else if stateDir == "" {
		logger.Info("stopped; no state directory, nothing saved")
	} else {
		logger.Info("stopped; state saved", zap.String("state_dir", stateDir))
	}
	return code
}

// isTerminal reports whether w is a character device (a terminal).
// MinTokenLength is the shortest push token accepted.
const MinTokenLength = 16

// readTokens reads the push API's tokens: one per line, blank lines and
// lines starting with # ignored. Its errors never quote a token.
func readTokens(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokens file: %w", err)
	}
	var tokens []string
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if len(line) < MinTokenLength || strings.ContainsAny(line, " \t") {
			return nil, fmt.Errorf("%s:%d: a token must be at least %d characters without spaces", path, i+1, MinTokenLength)
		}
		redact.Register(line)
		tokens = append(tokens, line)
	}
	if len(tokens) == 0 {
		return nil, fmt.Errorf("%s: no token (one per line; # starts a comment)", path)
	}
	return tokens, nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressBar draws one line per source on a terminal, redrawn in place.
func progressBar(w io.Writer) func(source string, done, total int, detail string) {
	var mu sync.Mutex
	return func(source string, done, total int, detail string) {
		mu.Lock()
		defer mu.Unlock()
		const width = 30
		filled := 0
		if total > 0 {
			filled = done * width / total
		}
		fmt.Fprintf(w, "\r%s [%s%s] %d/%d repositories, %s", source, strings.Repeat("#", filled), strings.Repeat(" ", width-filled), done, total, detail)
		if done == total {
			fmt.Fprintln(w)
		}
	}
}

func generateAlertmanager(config string, opts alertmanager.Options, out string, stdout, stderr io.Writer) int {
	l, err := app.Load(config, "", zap.NewNop())
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	b, err := alertmanager.Marshal(alertmanager.Generate(opts, l.Catalogue))
	if err != nil {
		fmt.Fprintln(stderr, "kpi_exporter: alertmanager:", err)
		return 1
	}
	return writeOut(out, b, stdout, stderr)
}

// writeOut writes a generated file, or to standard output for "-".
func writeOut(out string, b []byte, stdout, stderr io.Writer) int {
	if out == "-" {
		if _, err := stdout.Write(b); err != nil {
			fmt.Fprintln(stderr, "kpi_exporter:", err)
			return 1
		}
		return 0
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		fmt.Fprintln(stderr, "kpi_exporter:", err)
		return 1
	}
	return 0
}

// durationFlag is a kingpin flag value in Prometheus's duration syntax
// (30s, 15m, 1d).
type durationFlag struct{ d *time.Duration }

func (f durationFlag) Set(s string) error {
	d, err := model.ParseDuration(s)
	if err != nil {
		return err
	}
	*f.d = time.Duration(d)
	return nil
}

func (f durationFlag) String() string { return model.Duration(*f.d).String() }

func generateRules(opts promrules.Options, out, format string, labels map[string]string, stdout, stderr io.Writer) int {
	rules := promrules.Rules(opts)
	var b []byte
	var err error
	if format == "prometheusrule" {
		b, err = promrules.PrometheusRule(rules, "kpi-exporter", labels)
	} else {
		b, err = promrules.Marshal(rules)
	}
	if err != nil {
		fmt.Fprintln(stderr, "kpi_exporter: rules:", err)
		return 1
	}
	return writeOut(out, b, stdout, stderr)
}

// printReport prints the report of a period from the history in the state
// directory, which it only reads.
func printReport(config, stateDir string, db dbFlags, period report.Period, at, format string, now time.Time, stdout, stderr io.Writer) int {
	dsn, err := db.resolve()
	if err != nil {
		fmt.Fprintln(stderr, "kpi_exporter:", err)
		return 2
	}
	if dsn != "" {
		stateDir = ""
	}
	if stateDir == "" && dsn == "" {
		fmt.Fprintln(stderr, "kpi_exporter: report reads the KPI history in the state directory: set --state-dir or KPI_STATE_DIR")
		return 2
	}
	// A state directory that does not exist is a mistake (a wrong path),
	// not a report of unknowns.
	if fi, err := os.Stat(stateDir); dsn == "" && (err != nil || !fi.IsDir()) {
		fmt.Fprintf(stderr, "kpi_exporter: state directory %s: not found or not a directory; report reads the history the daemon keeps there\n", stateDir)
		return 1
	}
	l, err := app.Load(config, "", zap.NewNop())
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	var span report.Span
	if at == "" {
		span, err = report.LastComplete(l.Catalogue, period, now)
	} else {
		t, perr := time.Parse(time.DateOnly, at)
		if perr != nil {
			if t, perr = time.Parse(time.RFC3339, at); perr != nil {
				fmt.Fprintf(stderr, "kpi_exporter: --at %q: want a day (2006-01-02) or an RFC 3339 time\n", at)
				return 2
			}
		}
		span, err = report.SpanOf(l.Catalogue, period, t)
	}
	if err != nil {
		fmt.Fprintln(stderr, "kpi_exporter:", err)
		return 2
	}
	var st *store.Store
	if dsn != "" {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		st, err = store.OpenPostgres(ctx, dsn, store.PostgresOptions{Timeout: time.Minute})
		cancel()
		if err == nil {
			defer st.Close()
		}
	} else {
		st, err = store.Load(stateDir)
	}
	if err != nil {
		fmt.Fprintln(stderr, "kpi_exporter:", redact.Err(err))
		return 1
	}
	if err := report.Render(stdout, report.Build(l.Catalogue, st.Inputs().History, span), format); err != nil {
		fmt.Fprintln(stderr, "kpi_exporter:", err)
		return 1
	}
	return 0
}

func generateDashboards(config, out string, stdout, stderr io.Writer) int {
	l, err := app.Load(config, "", zap.NewNop())
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	ds, err := grafana.Dashboards(l.Catalogue)
	if err != nil {
		fmt.Fprintln(stderr, "kpi_exporter: dashboards:", err)
		return 1
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		fmt.Fprintln(stderr, "kpi_exporter:", err)
		return 1
	}
	for _, d := range ds {
		if err := os.WriteFile(filepath.Join(out, d.File), d.JSON, 0o644); err != nil {
			fmt.Fprintln(stderr, "kpi_exporter:", err)
			return 1
		}
	}
	fmt.Fprintf(stdout, "wrote %d dashboards to %s\n", len(ds), out)
	return 0
}

// migrateState copies a state directory into an empty state database.
func migrateState(stateDir string, db dbFlags, stdout, stderr io.Writer) int {
	dsn, err := db.resolve()
	if err != nil {
		fmt.Fprintln(stderr, "kpi_exporter:", err)
		return 2
	}
	if dsn == "" || stateDir == "" {
		fmt.Fprintln(stderr, "kpi_exporter: migrate-state copies --state-dir into the database of --state.dsn-file (or KPI_STATE_DSN / KPI_STATE_DSN_FILE); set both")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	st, err := store.OpenPostgres(ctx, dsn, store.PostgresOptions{Timeout: time.Minute})
	if err != nil {
		fmt.Fprintln(stderr, "kpi_exporter:", redact.Err(err))
		return 1
	}
	defer st.Close()
	rep, err := store.CopyToPostgres(ctx, stateDir, st)
	if err != nil {
		fmt.Fprintln(stderr, "kpi_exporter:", redact.Err(err))
		return 1
	}
	fmt.Fprintf(stdout, "copied %s into the state database (schema %s, version %d): %d readings, %d KPIs with %d history points, %d orphaned entries, %d source state files (%d bytes); the state directory is unchanged\n",
		stateDir, store.Schema, store.SchemaVersion(), rep.Readings, rep.KPIs, rep.Points, rep.Orphaned, rep.Blobs, rep.BlobBytes)
	return 0
}
