// Package file is the built-in source type "file": measurements from a YAML
// or CSV file that people or other systems edit — survey scores, NPS, press
// mentions, headcount, whatever no API provides.
//
// The file is re-read when its modification time or size changes; between
// changes a run costs one stat. A malformed file fails the run with the file
// and line of the fault, and the previous values stay in use.
package file

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"

	"github.com/bakhmach-hub/kpi_exporter/collectors"
	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

// Type is the source type name.
const Type = "file"

// MaxFileSize bounds what one run reads, so a runaway file cannot exhaust
// memory.
const MaxFileSize = 16 << 20

func init() { collectors.Register(Type, New) }

// Settings of a file source.
type Settings struct {
	// Path of the values file; relative paths resolve against the
	// catalogue's directory.
	Path string `yaml:"path"`
	// Format is yaml or csv; empty means by the file's extension (.csv is
	// CSV, anything else YAML).
	Format string `yaml:"format"`
}

// Collector reads one values file.
type Collector struct {
	path   string
	format string

	mu      sync.Mutex
	modTime time.Time
	size    int64
	cached  []kpi.Measurement
}

// New builds a file collector from a source declaration.
func New(src kpi.Source, env collectors.Env) (collectors.Collector, error) {
	var s Settings
	if err := src.Settings.Decode(&s); err != nil {
		return nil, err
	}
	if s.Path == "" {
		return nil, src.Settings.Errorf("", "source %q (type file) needs settings.path", src.Name)
	}
	switch s.Format {
	case "":
		s.Format = "yaml"
		if strings.EqualFold(filepath.Ext(s.Path), ".csv") {
			s.Format = "csv"
		}
	case "yaml", "csv":
	default:
		return nil, src.Settings.Errorf(".format", "format %q is not yaml or csv", s.Format)
	}
	path := s.Path
	if !filepath.IsAbs(path) && env.BaseDir != "" {
		path = filepath.Join(env.BaseDir, path)
	}
	return &Collector{path: path, format: s.Format}, nil
}

// Collect returns the file's measurements, parsing it only when it changed.
func (c *Collector) Collect(ctx context.Context) ([]kpi.Measurement, error) {
	fi, err := os.Stat(c.path)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cached != nil && fi.ModTime().Equal(c.modTime) && fi.Size() == c.size {
		return c.cached, nil
	}
	f, err := os.Open(c.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.path, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", c.path, MaxFileSize)
	}
	var ms []kpi.Measurement
	if c.format == "csv" {
		ms, err = ParseCSV(c.path, data)
	} else {
		ms, err = ParseYAML(c.path, data)
	}
	if err != nil {
		return nil, err
	}
	if ms == nil {
		ms = []kpi.Measurement{}
	}
	c.cached, c.modTime, c.size = ms, fi.ModTime(), fi.Size()
	return ms, nil
}

type yamlSeries struct {
	Value  *float64          `yaml:"value"`
	Labels map[string]string `yaml:"labels"`
}

// ParseYAML reads a values file in YAML: a mapping from measurement name to
// a number, or to a list of {value, labels} for labelled series:
//
//	net_promoter_score: 52
//	press_mentions:
//	  - {value: 3, labels: {outlet: trade}}
func ParseYAML(name string, data []byte) ([]kpi.Measurement, error) {
	f, err := kpi.ParseYAML(name, data)
	if err != nil {
		return nil, err
	}
	if len(f.Docs) == 0 || f.Docs[0].Body == nil {
		return nil, nil
	}
	if len(f.Docs) > 1 {
		return nil, fmt.Errorf("%s: a values file is one YAML document", name)
	}
	var doc map[string]ast.Node
	if err := kpi.DecodeNode(name, f.Docs[0].Body, &doc); err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var ms []kpi.Measurement
	for _, k := range keys {
		node := doc[k]
		if node == nil || node.Type() == ast.NullType {
			return nil, fmt.Errorf("%s: %s has no value", name, k)
		}
		pos := posOf(name, node)
		if node.Type() == ast.SequenceType {
			var series []yamlSeries
			if err := kpi.DecodeNode(name, node, &series, yaml.Strict()); err != nil {
				return nil, err
			}
			for i, s := range series {
				if s.Value == nil {
					return nil, fmt.Errorf("%s: %s[%d] has no value", pos, k, i)
				}
				m := kpi.Measurement{Name: k, Value: *s.Value, Labels: kpi.LabelsFromMap(s.Labels)}
				if err := collectors.CheckMeasurement(m); err != nil {
					return nil, fmt.Errorf("%s: %w", pos, err)
				}
				ms = append(ms, m)
			}
			continue
		}
		var v float64
		if err := kpi.DecodeNode(name, node, &v); err != nil {
			return nil, fmt.Errorf("%s: %s: want a number or a list of {value, labels}", pos, k)
		}
		m := kpi.Measurement{Name: k, Value: v}
		if err := collectors.CheckMeasurement(m); err != nil {
			return nil, fmt.Errorf("%s: %w", pos, err)
		}
		ms = append(ms, m)
	}
	return ms, nil
}

func posOf(file string, n ast.Node) kpi.Position {
	if tk := n.GetToken(); tk != nil && tk.Position != nil {
		return kpi.Position{File: file, Line: tk.Position.Line, Column: tk.Position.Column}
	}
	return kpi.Position{File: file}
}

// ParseCSV reads a values file in CSV. The header names the columns: name
// and value are required, every other column is a label (an empty cell
// leaves that label off):
//
//	name,value,outlet
//	press_mentions,3,trade
func ParseCSV(name string, data []byte) ([]kpi.Measurement, error) {
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	r := csv.NewReader(bytes.NewReader(data))
	r.Comment = '#'
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil, nil
	}
	if err != nil {
		return nil, csvError(name, err)
	}
	nameCol, valueCol := -1, -1
	for i, h := range header {
		switch h = strings.TrimSpace(h); h {
		case "name":
			nameCol = i
		case "value":
			valueCol = i
		}
		header[i] = h
	}
	if nameCol < 0 || valueCol < 0 {
		return nil, fmt.Errorf("%s:1: the header must name the columns name and value, got %q", name, short(strings.Join(header, ",")))
	}
	var ms []kpi.Measurement
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return ms, nil
		}
		if err != nil {
			return nil, csvError(name, err)
		}
		line, _ := r.FieldPos(0)
		v, err := strconv.ParseFloat(strings.TrimSpace(rec[valueCol]), 64)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: value %q is not a number", name, line, short(rec[valueCol]))
		}
		m := kpi.Measurement{Name: strings.TrimSpace(rec[nameCol]), Value: v}
		labels := map[string]string{}
		for i, cell := range rec {
			if i != nameCol && i != valueCol && cell != "" {
				labels[header[i]] = cell
			}
		}
		m.Labels = kpi.LabelsFromMap(labels)
		if err := collectors.CheckMeasurement(m); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		ms = append(ms, m)
	}
}

func csvError(name string, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s:%d:%d: %w", name, pe.Line, pe.Column, pe.Err)
	}
	return fmt.Errorf("%s: %w", name, err)
}

// short cuts a piece of input quoted in an error: an error never echoes a
// whole hostile field.
func short(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}
