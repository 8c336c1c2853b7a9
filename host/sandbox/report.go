package sandbox

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// LayerStatus is what the start-up probe found out about one layer.
type LayerStatus struct {
	Name   string `json:"name"`
	Active bool   `json:"active"`
	Detail string `json:"detail"` // how it is applied, or why it is not
}

// Report is the result of Probe: how this machine sandboxes steps.
type Report struct {
	Mode   string        `json:"mode"`   // "root", "userns" or "none": how namespaces are made
	Kernel string        `json:"kernel"` // kernel release
	User   string        `json:"user"`   // who hwe runs as
	Layers []LayerStatus `json:"layers"`
}

// Active reports whether a layer is available.
func (r Report) Active(name string) bool {
	for _, l := range r.Layers {
		if l.Name == name {
			return l.Active
		}
	}
	return false
}

// Detail returns what the probe says about a layer.
func (r Report) Detail(name string) string {
	for _, l := range r.Layers {
		if l.Name == name {
			return l.Detail
		}
	}
	return "unknown layer"
}

// ActiveLayers lists the names of the active layers.
func (r Report) ActiveLayers() []string {
	var out []string
	for _, l := range r.Layers {
		if l.Active {
			out = append(out, l.Name)
		}
	}
	return out
}

// Missing lists the layers of names that are not active.
func (r Report) Missing(names []string) []string {
	var out []string
	for _, n := range names {
		if !r.Active(n) {
			out = append(out, n)
		}
	}
	return out
}

// Write prints the report as `hwe doctor` shows it.
func (r Report) Write(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Sandbox for python, javascript and shell steps (kernel %s, hwe running as %s)\n", r.Kernel, r.User)
	fmt.Fprintf(&b, "mode: %s\n\n", modeDescription(r.Mode))
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, l := range r.Layers {
		state := "active"
		if !l.Active {
			state = "off"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", l.Name, state, l.Detail)
	}
	tw.Flush()
	if os := r.Missing(Layers); len(os) == 0 {
		b.WriteString("\nAll layers are active.\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func modeDescription(mode string) string {
	switch mode {
	case "root":
		return "root: namespaces made directly; each step drops to an unprivileged uid of its own"
	case "userns":
		return "userns: namespaces made inside a user namespace; steps keep no capabilities"
	default:
		return "none: no namespaces; the other layers still apply"
	}
}
