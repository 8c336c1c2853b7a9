package plugin

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	goplugin "github.com/hashicorp/go-plugin"
)

// ChecksumError is returned when a plugin executable's SHA-256 is not the
// pinned one; the plugin is not launched.
type ChecksumError struct {
	Runner string
	Path   string
	Want   string // hex
	Got    string // hex, "" if the file could not be read
	Err    error  // why it could not be read, if so
}

func (e *ChecksumError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("runner %s: refusing to launch %s: cannot verify its checksum: %v", e.Runner, e.Path, e.Err)
	}
	return fmt.Sprintf("runner %s: refusing to launch %s: its SHA-256 is %s, but %s was pinned (rebuild it or update %s)",
		e.Runner, e.Path, e.Got, e.Want, e.Path+ChecksumSuffix)
}

func (e *ChecksumError) Unwrap() error { return e.Err }

// verifyChecksum checks path against the pinned SHA-256 with a fresh
// go-plugin SecureConfig (a SecureConfig keeps its hash state, so reusing one
// for a second check always fails).
func verifyChecksum(runnerName, path string, want []byte) error {
	secure := &goplugin.SecureConfig{Checksum: want, Hash: sha256.New()}
	ok, err := secure.Check(path)
	if err != nil {
		return &ChecksumError{Runner: runnerName, Path: path, Want: hex.EncodeToString(want), Err: err}
	}
	if ok {
		return nil
	}
	got, _ := fileSHA256(path)
	return &ChecksumError{Runner: runnerName, Path: path, Want: hex.EncodeToString(want), Got: hex.EncodeToString(got)}
}

// fileSHA256 returns the SHA-256 of a file's content.
func fileSHA256(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}
