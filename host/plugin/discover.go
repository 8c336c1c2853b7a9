package plugin

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/hwe-run/hwe/host/api"
)

const (
	// ExecutablePrefix starts the file name of every third-party runner: an
	// executable named hwe-runner-LANG serves steps with language = "LANG".
	ExecutablePrefix = "hwe-runner-"
	// ChecksumSuffix names the file beside a runner that pins its SHA-256, in
	// sha256sum's format: `sha256sum hwe-runner-sql > hwe-runner-sql.sha256`.
	ChecksumSuffix = ".sha256"
	// PathEnv is the colon-separated list of folders searched first.
	PathEnv = "HWE_PLUGIN_PATH"
)

// SearchPath returns the folders searched for runner plugins, in order:
// those in $HWE_PLUGIN_PATH, then ~/.hwe/plugins.
func SearchPath() []string {
	var dirs []string
	for _, d := range filepath.SplitList(os.Getenv(PathEnv)) {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, ".hwe", "plugins"))
	}
	return dirs
}

// Found is a runner plugin found on the plugin path.
type Found struct {
	Language string // from the file name
	Path     string // absolute path of the executable
	Checksum []byte // SHA-256 pinned by the .sha256 file beside it
	// Err says why the plugin cannot be launched (no or malformed checksum
	// file); nil if it can.
	Err error
}

// Discover lists the runner plugins in dirs. As with PATH, the first folder
// that has a runner for a language wins. Folders that do not exist are
// skipped. The result is sorted by language.
func Discover(dirs []string) []Found {
	seen := make(map[string]bool)
	var found []Found
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			lang, ok := strings.CutPrefix(e.Name(), ExecutablePrefix)
			if !ok || lang == "" || strings.HasSuffix(lang, ChecksumSuffix) || seen[lang] {
				continue
			}
			path, err := filepath.Abs(filepath.Join(dir, e.Name()))
			if err != nil {
				continue
			}
			st, err := os.Stat(path) // follows symlinks
			if err != nil || !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
				continue
			}
			seen[lang] = true
			f := Found{Language: lang, Path: path}
			f.Checksum, f.Err = readChecksumFile(path + ChecksumSuffix)
			found = append(found, f)
		}
	}
	sort.Slice(found, func(i, j int) bool { return found[i].Language < found[j].Language })
	return found
}

// readChecksumFile reads a SHA-256 in sha256sum's format ("HEX  NAME", or
// just "HEX").
func readChecksumFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no checksum file %s: hwe launches only plugins with a pinned SHA-256 (sha256sum %s > %s)",
			path, filepath.Base(strings.TrimSuffix(path, ChecksumSuffix)), filepath.Base(path))
	}
	if err != nil {
		return nil, err
	}
	fields := strings.Fields(string(data))
	if len(fields) == 0 {
		return nil, fmt.Errorf("checksum file %s is empty", path)
	}
	sum, err := hex.DecodeString(fields[0])
	if err != nil || len(sum) != 32 {
		return nil, fmt.Errorf("checksum file %s does not start with a hex SHA-256", path)
	}
	return sum, nil
}

// Config returns the Config to launch f with NewClient. Steps of
// language f.Language go to it; errors name it by its language.
func (f Found) Config() Config {
	return Config{
		Name:      f.Language,
		Languages: []string{f.Language},
		Kind:      "plugin",
		Path:      f.Path,
		Checksum:  f.Checksum,
	}
}

// Listed is one line of `hwe plugins list` for a third-party runner.
type Listed struct {
	api.RunnerInfo
	Err error // why it cannot be used; Version is empty then
}

// List launches each plugin found just long enough to ask its name and
// version (verifying its checksum first) and returns what `hwe plugins list`
// shows for it. Kind is "plugin"; Languages is the language the file name
// gives, which is what steps are routed by.
func List(ctx context.Context, found []Found, logger hclog.Logger) []Listed {
	out := make([]Listed, 0, len(found))
	for _, f := range found {
		if ctx.Err() != nil {
			break
		}
		l := Listed{RunnerInfo: api.RunnerInfo{Name: f.Language, Languages: []string{f.Language}, Kind: "plugin", Path: f.Path}}
		if f.Err != nil {
			l.Err = f.Err
			out = append(out, l)
			continue
		}
		cfg := f.Config()
		cfg.Logger = logger
		c, err := NewClient(cfg)
		if err == nil {
			var info api.RunnerInfo
			info, err = c.RemoteInfo()
			_ = c.Close()
			if err == nil {
				l.Name, l.Version = info.Name, info.Version
			}
		}
		l.Err = err
		out = append(out, l)
	}
	return out
}
