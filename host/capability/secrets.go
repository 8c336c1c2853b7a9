package capability

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/joho/godotenv"
)

// SecretStore gives the secrets of one tenant. The host asks it only for
// names the step was granted; on the server each tenant has its own store.
type SecretStore interface {
	Secret(ctx context.Context, name string) (value string, found bool, err error)
}

// ValidSecretName reports whether name can name a secret: a letter or
// underscore, then letters, digits and underscores, at most 128 characters.
// Anything else (dots, slashes) is refused before a store sees it.
func ValidSecretName(name string) bool {
	if name == "" || len(name) > 128 {
		return false
	}
	for i, c := range name {
		ok := c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9'
		if !ok {
			return false
		}
	}
	return true
}

// EnvSecrets reads secret NAME from the host environment variable
// HWE_SECRET_<NAME> (NAME upper-cased). It suits `hwe run` on a developer's
// machine. Lookup defaults to os.LookupEnv.
type EnvSecrets struct {
	Prefix string // default "HWE_SECRET_"
	Lookup func(string) (string, bool)
}

func (e EnvSecrets) Secret(_ context.Context, name string) (string, bool, error) {
	prefix := e.Prefix
	if prefix == "" {
		prefix = "HWE_SECRET_"
	}
	lookup := e.Lookup
	if lookup == nil {
		lookup = os.LookupEnv
	}
	v, ok := lookup(prefix + strings.ToUpper(name))
	return v, ok, nil
}

// DirSecrets reads secret NAME from the file DIR/NAME (one secret per file,
// a trailing newline dropped), the layout of Kubernetes and Docker secrets.
// Files are opened through os.Root, so a symlink cannot point outside DIR.
type DirSecrets struct {
	Dir string
}

func (d DirSecrets) Secret(_ context.Context, name string) (string, bool, error) {
	if !ValidSecretName(name) {
		return "", false, nil
	}
	root, err := os.OpenRoot(d.Dir)
	if err != nil {
		return "", false, fmt.Errorf("secrets: %w", err)
	}
	defer root.Close()
	b, err := root.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("secrets: %w", err)
	}
	return strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r"), true, nil
}

// MapSecrets is a fixed set of secrets, for tests and for stores loaded once.
type MapSecrets map[string]string

func (m MapSecrets) Secret(_ context.Context, name string) (string, bool, error) {
	v, ok := m[name]
	return v, ok, nil
}

// LoadSecretsFile reads a file of secrets: a JSON object of strings
// ({"TOKEN": "..."}) when it ends in .json, otherwise a dotenv file
// (TOKEN=...). A directory gives a DirSecrets.
func LoadSecretsFile(path string) (SecretStore, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	if info.IsDir() {
		return DirSecrets{Dir: path}, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	m := MapSecrets{}
	if strings.EqualFold(filepath.Ext(path), ".json") {
		if err := json.Unmarshal(data, &m); err != nil {
			return nil, fmt.Errorf("secrets: %s: want a JSON object of strings: %w", path, err)
		}
		return m, nil
	}
	env, err := godotenv.UnmarshalBytes(data)
	if err != nil {
		return nil, fmt.Errorf("secrets: %s: %w", path, err)
	}
	for k, v := range env {
		m[k] = v
	}
	return m, nil
}
