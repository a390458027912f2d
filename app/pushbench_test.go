package app

import (
	"fmt"
	"testing"

	"github.com/bakhmach-hub/kpi_exporter/exporter"
)

// BenchmarkPush measures one push request of 10 values to a push source
// holding 500 series, persisted before it returns.
func BenchmarkPush(b *testing.B) {
	f := start(b, pushCatalogue)
	for i := 0; i < 500; i++ {
		if err := f.app.Push(b.Context(), []exporter.PushValue{{Measurement: "responses", Value: 1, Labels: map[string]string{"form": fmt.Sprintf("f%d", i)}}}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		values := make([]exporter.PushValue, 10)
		for j := range values {
			values[j] = exporter.PushValue{Index: j, Measurement: "responses", Value: float64(i), Labels: map[string]string{"form": fmt.Sprintf("f%d", (i*10+j)%500)}}
		}
		if err := f.app.Push(b.Context(), values); err != nil {
			b.Fatal(err)
		}
	}
}
