// Package push is the built-in source type "push": values that people or
// other systems send to the daemon's push API (POST /api/v1/values) instead
// of a file or an API the daemon polls — survey scores, headcount, papers
// published. A push source is never scheduled; its reading is what was last
// pushed, persisted like every other reading.
package push

import (
	"context"
	"errors"
	"regexp"

	"github.com/bakhmach-hub/kpi_exporter/collectors"
	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

// Type is the source type name.
const Type = "push"

func init() { collectors.Register(Type, New) }

// Settings of a push source.
type Settings struct {
	// Measurements are accepted besides those the source's KPIs are bound
	// to (for measurements only a derived source reads).
	Measurements []string `yaml:"measurements"`
}

// Collector is a push source.
type Collector struct{ measurements []string }

var name = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// New builds a push source from its declaration.
func New(src kpi.Source, _ collectors.Env) (collectors.Collector, error) {
	var s Settings
	if err := src.Settings.Decode(&s); err != nil {
		return nil, err
	}
	for i, m := range s.Measurements {
		if !name.MatchString(m) {
			return nil, src.Settings.Errorf(".measurements", "measurement %d %q must be snake_case ([a-z_][a-z0-9_]*)", i+1, m)
		}
	}
	return &Collector{measurements: s.Measurements}, nil
}

// ErrNotPolled is what Collect returns: a push source has nothing to poll.
var ErrNotPolled = errors.New("a push source is not polled; its values come from POST /api/v1/values")

// Collect is never called by the scheduler; it says why.
func (c *Collector) Collect(context.Context) ([]kpi.Measurement, error) { return nil, ErrNotPolled }

// Measurements lists the declared extra measurements.
func (c *Collector) Measurements() []string { return c.measurements }
