package server

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hwe-run/hwe/host/policy"
	"github.com/pelletier/go-toml/v2"
)

// Role is what a token may do. Each role includes the ones before it.
type Role int

const (
	RoleViewer   Role = iota + 1 // read workflows, runs, events
	RoleOperator                 // also start, cancel and retry runs; validate
	RoleAdmin                    // also manage workflows and webhooks; read the audit log
)

func (r Role) String() string {
	switch r {
	case RoleViewer:
		return "viewer"
	case RoleOperator:
		return "operator"
	case RoleAdmin:
		return "admin"
	}
	return "none"
}

// ParseRole reads a role name.
func ParseRole(s string) (Role, error) {
	switch s {
	case "viewer":
		return RoleViewer, nil
	case "operator":
		return RoleOperator, nil
	case "admin":
		return RoleAdmin, nil
	}
	return 0, fmt.Errorf("unknown role %q (viewer, operator or admin)", s)
}

// LocalTenant is the name of the single tenant `hwe serve` serves without a
// tenants file.
const LocalTenant = "local"

// Tenant is one tenant: its tokens, its policy and its own workflows folder.
type Tenant struct {
	Name         string
	WorkflowsDir string
	Tokens       []Token
	// Policy bounds every step's grant (nil = policy.Strict(): nothing
	// beyond default limits).
	Policy *policy.Policy
	// Runners lists the canonical languages this tenant may run (empty = all).
	Runners []string
	// MaxConcurrentRuns bounds the tenant's runs executing at once (0 = no
	// limit); more runs wait, queued.
	MaxConcurrentRuns int
}

// Token is one API token of a tenant. Only its SHA-256 is kept.
type Token struct {
	Name   string
	Role   Role
	SHA256 string // hex
}

// HashToken returns the hex SHA-256 of a token, as a tenants file stores it.
// Tokens are long random strings, so a fast hash is enough.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// NewToken returns a fresh random token ("hwe_" + 43 base64url characters).
func NewToken() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("server: no randomness: " + err.Error())
	}
	return "hwe_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// tenantsFile is the on-disk form (TOML, or JSON for a .json file):
//
//	[[tenant]]
//	name = "acme"
//	workflows = "acme/workflows"      # relative to the tenants file
//	runners = ["lua", "python"]       # allowed runners; empty = all
//	max_concurrent_runs = 4
//	  [tenant.policy]                 # package policy's format
//	  require = ["landlock", "seccomp"]
//	  [tenant.policy.allow]           # ceiling for every step's grant
//	  net = ["api.example.com:443"]
//	  secrets = ["API_KEY"]
//	  kv = true
//	  memory = "256MiB"
//	  cpu = "30s"
//	  [[tenant.token]]
//	  name = "ci"
//	  role = "operator"               # viewer | operator | admin
//	  sha256 = "…"                    # `hwe serve token` prints one
type tenantsFile struct {
	Tenant []tenantEntry `toml:"tenant" json:"tenant"`
}

type tenantEntry struct {
	Name              string         `toml:"name" json:"name"`
	Workflows         string         `toml:"workflows" json:"workflows"`
	Runners           []string       `toml:"runners" json:"runners"`
	MaxConcurrentRuns int            `toml:"max_concurrent_runs" json:"max_concurrent_runs"`
	Policy            map[string]any `toml:"policy" json:"policy"`
	Token             []tokenEntry   `toml:"token" json:"token"`
}

type tokenEntry struct {
	Name   string `toml:"name" json:"name"`
	Role   string `toml:"role" json:"role"`
	SHA256 string `toml:"sha256" json:"sha256"`
}

// LoadTenants reads a tenants file. Workflows folders are relative to the
// file's folder. Every tenant needs a name, a folder and at least one token;
// names and token hashes must be unique.
func LoadTenants(path string) ([]*Tenant, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tenants file: %w", err)
	}
	var f tenantsFile
	if strings.EqualFold(filepath.Ext(path), ".json") {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		err = dec.Decode(&f)
	} else {
		err = toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields().Decode(&f)
	}
	if err != nil {
		return nil, tenantsFileError(path, err)
	}
	base := filepath.Dir(path)
	seenName := map[string]bool{}
	seenHash := map[string]string{}
	var out []*Tenant
	for i, e := range f.Tenant {
		where := fmt.Sprintf("tenants file %s: tenant %d", path, i+1)
		if e.Name != "" {
			where = fmt.Sprintf("tenants file %s: tenant %q", path, e.Name)
		}
		if checkName(e.Name) != nil {
			return nil, fmt.Errorf("%s: name must be letters, digits, '_', '-' or '.'", where)
		}
		if seenName[e.Name] {
			return nil, fmt.Errorf("%s: defined twice", where)
		}
		seenName[e.Name] = true
		if e.Workflows == "" {
			return nil, fmt.Errorf("%s: `workflows` (its workflows folder) is required", where)
		}
		dir := e.Workflows
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(base, dir)
		}
		if len(e.Token) == 0 {
			return nil, fmt.Errorf("%s: needs at least one [[tenant.token]]", where)
		}
		t := &Tenant{Name: e.Name, WorkflowsDir: dir, Runners: e.Runners, MaxConcurrentRuns: e.MaxConcurrentRuns}
		for j, tok := range e.Token {
			role, err := ParseRole(tok.Role)
			if err != nil {
				return nil, fmt.Errorf("%s: token %d: %w", where, j+1, err)
			}
			h := strings.ToLower(strings.TrimPrefix(tok.SHA256, "sha256:"))
			if b, err := hex.DecodeString(h); err != nil || len(b) != sha256.Size {
				return nil, fmt.Errorf("%s: token %d: sha256 must be 64 hex digits (`hwe serve token` prints one)", where, j+1)
			}
			if other, dup := seenHash[h]; dup {
				return nil, fmt.Errorf("%s: token %d: the same token is already used by tenant %q", where, j+1, other)
			}
			seenHash[h] = e.Name
			name := tok.Name
			if name == "" {
				name = fmt.Sprintf("token%d", j+1)
			}
			t.Tokens = append(t.Tokens, Token{Name: name, Role: role, SHA256: h})
		}
		if e.Policy != nil {
			p, err := policy.FromMap(e.Policy)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			withDefaultLimits(&p)
			t.Policy = &p
		}
		out = append(out, t)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("tenants file %s: no [[tenant]] entries", path)
	}
	return out, nil
}

// tenantsFileError names the file, line and key of a decoding error.
func tenantsFileError(path string, err error) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) && len(strict.Errors) > 0 {
		de := strict.Errors[0]
		row, _ := de.Position()
		return fmt.Errorf("%s:%d: unknown key %q", path, row, strings.Join(de.Key(), "."))
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		return fmt.Errorf("%s:%d: %v", path, row, err)
	}
	return fmt.Errorf("tenants file %s: %w", path, err)
}

// withDefaultLimits fills the limits a tenant's policy leaves unset with
// those of policy.Strict, so every tenant's steps are bounded.
func withDefaultLimits(p *policy.Policy) {
	d := policy.Strict().Ceiling
	c := &p.Ceiling
	if c.Memory == 0 {
		c.Memory = d.Memory
	}
	if c.Processes == 0 {
		c.Processes = d.Processes
	}
	if c.MaxOutput == 0 {
		c.MaxOutput = d.MaxOutput
	}
	if c.CPU == 0 {
		c.CPU = d.CPU
	}
}

// policyOf is the policy a tenant's steps run under.
func policyOf(t *Tenant) policy.Policy {
	if t.Policy != nil {
		return *t.Policy
	}
	return policy.Strict()
}
