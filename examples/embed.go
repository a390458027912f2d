// Package examples embeds the default catalogue, which is also shipped as
// examples/kpis.yaml for users to copy and edit.
package examples

import _ "embed"

// Catalogue is the default KPI catalogue: every number target of the
// framework in shared/seed/kpi-framework.md.
//
//go:embed kpis.yaml
var Catalogue []byte

// CatalogueName is how errors in the embedded catalogue name it.
const CatalogueName = "<embedded>/examples/kpis.yaml"
