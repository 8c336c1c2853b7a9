package sandbox

import (
	"os/exec"
	"testing"
)

// BenchmarkLaunch measures what the sandbox costs per process launch: the
// same `bash -c true` started bare, through Wrap with the sandbox off, and
// with every layer this machine offers. Compare the ns/op of the three.
func BenchmarkLaunch(b *testing.B) {
	cases := []struct {
		name string
		wrap bool
		spec Spec
	}{
		{"bare", false, Spec{}},
		{"off", true, Spec{Off: true}},
		{"on", true, Spec{}},
	}
	Probe() // the one-time probe is not part of a launch
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				cmd := exec.Command(bashPath, "-c", "true")
				var sb *Sandbox
				if c.wrap {
					var err error
					if sb, err = Wrap(cmd, c.spec); err != nil {
						b.Fatal(err)
					}
				}
				if err := cmd.Run(); err != nil {
					b.Fatal(err)
				}
				if sb != nil {
					sb.Close()
				}
			}
		})
	}
}
