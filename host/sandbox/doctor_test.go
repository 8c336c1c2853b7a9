package sandbox

import (
	"strings"
	"testing"
)

func TestDoctorReportsEveryLayer(t *testing.T) {
	var b strings.Builder
	if err := Doctor(&b); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + b.String())
	rep := Probe()
	if len(rep.Layers) != len(Layers) {
		t.Fatalf("report has %d layers, want %d", len(rep.Layers), len(Layers))
	}
	for i, l := range rep.Layers {
		if l.Name != Layers[i] || l.Detail == "" {
			t.Errorf("layer %d: %+v", i, l)
		}
	}
}
