package queue

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/nats.go"
)

// natsToken returns the token the embedded server requires: none on a
// loopback address, else $HWE_NATS_TOKEN, else one kept in dir/token
// (generated on first use, readable by this user only).
func natsToken(dir, listen string) (string, error) {
	if listen == "" {
		return "", nil
	}
	host, _, err := splitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("--nats-listen %q: %w", listen, err)
	}
	if isLoopbackHost(host) {
		return "", nil
	}
	if t := os.Getenv(EnvNATSToken); t != "" {
		return t, nil
	}
	path := filepath.Join(dir, "token")
	if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) != "" {
		return strings.TrimSpace(string(b)), nil
	}
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	t := hex.EncodeToString(raw[:])
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(t+"\n"), 0o600); err != nil {
		return "", err
	}
	return t, nil
}

func natsTokenOption(t string) nats.Option { return nats.Token(t) }
