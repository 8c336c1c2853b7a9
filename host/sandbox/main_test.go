package sandbox

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	// The test binary doubles as the sandbox helper, as hwe does.
	MaybeRunHelper()
	os.Exit(m.Run())
}
