// Package config resolves hwe's settings from, highest precedence first: the
// environment (HWE_*), a .env file in the working directory, a config file
// (hwe.toml, hwe.yaml/hwe.yml or hwe.json in the working directory, else in
// the user's config folder), and built-in defaults. Every key is documented
// in Keys and honoured; a malformed file or value is an error with FILE:LINE.
package config

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/joho/godotenv"
	"github.com/pelletier/go-toml/v2"
	"gopkg.in/yaml.v3"
)

// Key describes one setting.
type Key struct {
	Name    string // as written in a config file
	Env     string // environment variable
	Default func() string
	Doc     string
	check   func(string) error
}

// Keys is every setting hwe reads.
var Keys = []Key{
	{Name: "workflows_dir", Env: "HWE_WORKFLOWS_DIR", Default: constant("workflows"), Doc: "folder of workflow files for `hwe run` without a target, bare names and `hwe serve`"},
	{Name: "concurrency", Env: "HWE_CONCURRENCY", Default: func() string { return strconv.Itoa(runtime.NumCPU()) }, Doc: "steps run at once per workflow", check: positiveInt},
	{Name: "fail_fast", Env: "HWE_FAIL_FAST", Default: constant("true"), Doc: "stop a run at its first failed step (false = keep going)", check: boolean},
	{Name: "timeout", Env: "HWE_TIMEOUT", Default: constant("0s"), Doc: "default per-step timeout (0s = none)", check: duration},
	{Name: "python", Env: "HWE_PYTHON", Default: constant(""), Doc: "python3 interpreter for Python steps (empty = resolve python3 once)"},
	{Name: "node", Env: "HWE_NODE", Default: constant(""), Doc: "node interpreter for JavaScript steps (empty = node on PATH)"},
	{Name: "bash", Env: "HWE_BASH", Default: constant(""), Doc: "bash for shell steps (empty = bash on PATH)"},
	{Name: "data_dir", Env: "HWE_DATA_DIR", Default: constant(""), Doc: "folder for run history (SQLite) and caches; empty = no history for `hwe run`, .hwe for `hwe serve`"},
	{Name: "addr", Env: "HWE_ADDR", Default: constant("127.0.0.1:8080"), Doc: "address `hwe serve` listens on"},
	{Name: "plugin_path", Env: "HWE_PLUGIN_PATH", Default: constant(""), Doc: "colon-separated folders searched for hwe-runner-<language> plugins (then ~/.hwe/plugins)"},
	{Name: "sandbox", Env: "HWE_SANDBOX", Default: constant("on"), Doc: "OS sandbox for subprocess steps: on or off", check: oneOf("on", "off")},
}

func constant(s string) func() string { return func() string { return s } }

// Value is one resolved setting and where it came from.
type Value struct {
	Key    Key
	Value  string
	Source string // "default", "FILE:LINE", ".env", "env HWE_X"
}

// Config is the resolved settings.
type Config struct {
	Values map[string]Value
	File   string // config file used, if any
	Dir    string // the working directory it was resolved for
}

// Get returns the value of a key.
func (c *Config) Get(name string) string { return c.Values[name].Value }

// Int returns an integer key (already validated).
func (c *Config) Int(name string) int { n, _ := strconv.Atoi(c.Get(name)); return n }

// Bool returns a boolean key (already validated).
func (c *Config) Bool(name string) bool { b, _ := strconv.ParseBool(c.Get(name)); return b }

// Duration returns a duration key (already validated).
func (c *Config) Duration(name string) time.Duration { d, _ := parseDuration(c.Get(name)); return d }

// Load resolves the configuration for a working directory. getenv reads the
// process environment (injected so tests need not touch it).
func Load(dir string, getenv func(string) string) (*Config, error) {
	c := &Config{Values: map[string]Value{}, Dir: dir}
	for _, k := range Keys {
		c.Values[k.Name] = Value{Key: k, Value: k.Default(), Source: "default"}
	}
	file := findFile(dir, getenv)
	if file != "" {
		c.File = file
		vals, err := readFile(file)
		if err != nil {
			return nil, err
		}
		for name, v := range vals {
			k, ok := keyByName(name)
			if !ok {
				return nil, fmt.Errorf("%s:%d: unknown key %q (known: %s)", file, v.line, name, knownNames())
			}
			if err := check(k, v.value); err != nil {
				return nil, fmt.Errorf("%s:%d: %s: %v", file, v.line, name, err)
			}
			c.Values[name] = Value{Key: k, Value: v.value, Source: fmt.Sprintf("%s:%d", file, v.line)}
		}
	}
	dotenv := filepath.Join(dir, ".env")
	if data, err := os.ReadFile(dotenv); err == nil {
		vals, err := godotenv.UnmarshalBytes(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", dotenv, err)
		}
		for _, k := range Keys {
			if v, ok := vals[k.Env]; ok {
				if err := check(k, v); err != nil {
					return nil, fmt.Errorf("%s:%d: %s: %v", dotenv, lineOf(data, k.Env), k.Env, err)
				}
				c.Values[k.Name] = Value{Key: k, Value: v, Source: ".env"}
			}
		}
	}
	for _, k := range Keys {
		if v := getenv(k.Env); v != "" {
			if err := check(k, v); err != nil {
				return nil, fmt.Errorf("environment %s: %v", k.Env, err)
			}
			c.Values[k.Name] = Value{Key: k, Value: v, Source: "env " + k.Env}
		}
	}
	return c, nil
}

func keyByName(name string) (Key, bool) {
	for _, k := range Keys {
		if k.Name == name {
			return k, true
		}
	}
	return Key{}, false
}

func knownNames() string {
	names := make([]string, len(Keys))
	for i, k := range Keys {
		names[i] = k.Name
	}
	return strings.Join(names, ", ")
}

var fileNames = []string{"hwe.toml", "hwe.yaml", "hwe.yml", "hwe.json"}

func findFile(dir string, getenv func(string) string) string {
	dirs := []string{dir}
	if d := getenv("XDG_CONFIG_HOME"); d != "" {
		dirs = append(dirs, filepath.Join(d, "hwe"))
	} else if home := getenv("HOME"); home != "" {
		dirs = append(dirs, filepath.Join(home, ".config", "hwe"))
	}
	for _, d := range dirs {
		for _, n := range fileNames {
			p := filepath.Join(d, n)
			if st, err := os.Stat(p); err == nil && !st.IsDir() {
				return p
			}
		}
	}
	return ""
}

type rawValue struct {
	value string
	line  int
}

// readFile reads a flat key/value config file and the line of each key.
func readFile(path string) (map[string]rawValue, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]rawValue{}
	switch filepath.Ext(path) {
	case ".toml":
		var m map[string]any
		if err := toml.Unmarshal(data, &m); err != nil {
			if de, ok := err.(*toml.DecodeError); ok {
				row, _ := de.Position()
				return nil, fmt.Errorf("%s:%d: %v", path, row, de.Error())
			}
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		for k, v := range m {
			s, err := scalar(v)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %s: %v", path, tomlLine(data, k), k, err)
			}
			out[k] = rawValue{s, tomlLine(data, k)}
		}
	case ".yaml", ".yml":
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err != nil {
			line := 0
			if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
				line, _ = strconv.Atoi(m[1])
			}
			return nil, fmt.Errorf("%s:%d: %v", path, line, err)
		}
		if len(doc.Content) == 0 {
			return out, nil
		}
		root := doc.Content[0]
		if root.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s:%d: the file must be a mapping of key: value", path, root.Line)
		}
		for i := 0; i+1 < len(root.Content); i += 2 {
			k, v := root.Content[i], root.Content[i+1]
			if v.Kind != yaml.ScalarNode {
				return nil, fmt.Errorf("%s:%d: %s must be a single value", path, k.Line, k.Value)
			}
			out[k.Value] = rawValue{v.Value, k.Line}
		}
	case ".json":
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			line := 1
			if se, ok := err.(*json.SyntaxError); ok {
				line = 1 + bytes.Count(data[:min(int(se.Offset), len(data))], []byte("\n"))
			}
			return nil, fmt.Errorf("%s:%d: %v", path, line, err)
		}
		for k, v := range m {
			s, err := scalar(v)
			line := lineOf(data, `"`+k+`"`)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %s: %v", path, line, k, err)
			}
			out[k] = rawValue{s, line}
		}
	}
	return out, nil
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

func scalar(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool, int64, float64, json.Number, int:
		return fmt.Sprint(x), nil
	}
	return "", fmt.Errorf("must be a single value, not %T", v)
}

func tomlLine(data []byte, key string) int {
	re := regexp.MustCompile(`^\s*"?` + regexp.QuoteMeta(key) + `"?\s*=`)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		if re.MatchString(sc.Text()) {
			return n
		}
	}
	return 1
}

func lineOf(data []byte, needle string) int {
	i := bytes.Index(data, []byte(needle))
	if i < 0 {
		return 1
	}
	return 1 + bytes.Count(data[:i], []byte("\n"))
}

func check(k Key, v string) error {
	if k.check == nil {
		return nil
	}
	return k.check(v)
}

func positiveInt(s string) error {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 1 {
		return fmt.Errorf("%q is not a whole number of at least 1", s)
	}
	return nil
}

func boolean(s string) error {
	if _, err := strconv.ParseBool(s); err != nil {
		return fmt.Errorf("%q is not true or false", s)
	}
	return nil
}

func parseDuration(s string) (time.Duration, error) {
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Duration(n * float64(time.Second)), nil
	}
	return time.ParseDuration(s)
}

func duration(s string) error {
	if d, err := parseDuration(s); err != nil || d < 0 {
		return fmt.Errorf("%q is not a duration like 30s", s)
	}
	return nil
}

func oneOf(options ...string) func(string) error {
	return func(s string) error {
		for _, o := range options {
			if s == o {
				return nil
			}
		}
		return fmt.Errorf("%q is not one of %s", s, strings.Join(options, ", "))
	}
}

// Describe lists every key with its value and source, sorted by name.
func (c *Config) Describe() []Value {
	out := make([]Value, 0, len(c.Values))
	for _, v := range c.Values {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key.Name < out[j].Key.Name })
	return out
}
