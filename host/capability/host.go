// Package capability is the one implementation of api.Host: the functions
// through which step code in every runner reaches the outside world (log,
// progress, HTTP, KV, secrets). A Host is built per step attempt from the
// step's effective grant, and every call is checked against that grant here,
// so runners only forward calls and never decide what is allowed.
//
// Nothing is allowed unless the grant says so. A refused call returns an
// *api.DeniedError naming the capability, is reported to Config.OnDenied and
// is written to the step's log.
package capability

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/hwe-run/hwe/host/api"
)

// Events receives a step's log lines and progress (engine.HostEvents fits).
type Events interface {
	Log(stream, line string)
	Progress(fraction float64, message string)
}

// Denial is one refused host call, for the audit trail.
type Denial struct {
	Time       time.Time
	RunID      string
	Tenant     string
	Workflow   string
	Step       string
	Attempt    int
	Capability string
	Detail     string
}

// Config is everything one step attempt's Host needs. Stores are shared by
// all steps; the Host scopes them to the tenant and workflow.
type Config struct {
	RunID    string
	Tenant   string
	Workflow string
	Step     string
	Attempt  int

	Grant api.Grant // the effective grant (request ∩ policy)

	Events  Events      // log lines and progress; nil drops them
	KV      KVStore     // nil: KV calls fail even when granted
	Secrets SecretStore // the tenant's secrets; nil: none exist
	HTTP    HTTPConfig

	// MaxLogBytes caps the log lines one attempt may emit (default 16 MiB);
	// past it lines are dropped and one notice is logged.
	MaxLogBytes int64
	// MaxKVValueBytes caps one KV value (default 1 MiB).
	MaxKVValueBytes int

	// OnDenied is called for every refused call (audit hook). It must not block.
	OnDenied func(Denial)
}

const (
	defaultMaxLogBytes  = 16 << 20
	defaultMaxKVValue   = 1 << 20
	maxKVKeyBytes       = 512
	maxLogLineBytes     = 64 << 10
	maxProgressMsgBytes = 1 << 10
)

// Host is api.Host for one step attempt. It is safe for concurrent use.
type Host struct {
	cfg     Config
	scope   Scope
	fetch   *fetcher
	netErr  error // a bad net grant entry: every fetch fails with it
	mu      sync.Mutex
	logged  int64
	capped  bool
	denials []Denial
}

var _ api.Host = (*Host)(nil)

// New builds the Host for one step attempt.
func New(cfg Config) *Host {
	if cfg.MaxLogBytes <= 0 {
		cfg.MaxLogBytes = defaultMaxLogBytes
	}
	if cfg.MaxKVValueBytes <= 0 {
		cfg.MaxKVValueBytes = defaultMaxKVValue
	}
	h := &Host{cfg: cfg, scope: Scope{Tenant: cfg.Tenant, Workflow: cfg.Workflow}}
	rules, err := parseNetRules(cfg.Grant.Net)
	if err != nil {
		h.netErr = err
	}
	h.fetch = newFetcher(cfg.HTTP, rules)
	return h
}

// ForStep builds the Host for a step request: base carries the shared stores
// and settings, req the step's identity and effective grant.
func ForStep(base Config, req *api.StepRequest, events Events) *Host {
	base.RunID = req.RunID
	base.Tenant = req.Tenant
	base.Workflow = req.Workflow
	base.Step = req.Step
	base.Attempt = req.Attempt
	base.Grant = req.Grant
	base.Events = events
	return New(base)
}

// Denials returns the calls refused so far.
func (h *Host) Denials() []Denial {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Denial(nil), h.denials...)
}

func (h *Host) deny(capability, detail string) error {
	return h.denied(&api.DeniedError{Capability: capability, Detail: detail})
}

func (h *Host) denied(err *api.DeniedError) error {
	d := Denial{
		Time: time.Now(), RunID: h.cfg.RunID, Tenant: h.cfg.Tenant, Workflow: h.cfg.Workflow,
		Step: h.cfg.Step, Attempt: h.cfg.Attempt, Capability: err.Capability, Detail: err.Detail,
	}
	h.mu.Lock()
	h.denials = append(h.denials, d)
	h.mu.Unlock()
	if h.cfg.OnDenied != nil {
		h.cfg.OnDenied(d)
	}
	h.emitLog("log", "hwe: "+err.Error())
	return err
}

// Log records one line of the step's output.
func (h *Host) Log(stream, line string) {
	switch stream {
	case "stdout", "stderr", "log":
	default:
		stream = "log"
	}
	if len(line) > maxLogLineBytes {
		line = truncateUTF8(line, maxLogLineBytes) + " [line truncated]"
	}
	h.emitLog(stream, line)
}

func (h *Host) emitLog(stream, line string) {
	if h.cfg.Events == nil {
		return
	}
	h.mu.Lock()
	if h.capped {
		h.mu.Unlock()
		return
	}
	h.logged += int64(len(line)) + 1
	if h.logged > h.cfg.MaxLogBytes {
		h.capped = true
		h.mu.Unlock()
		h.cfg.Events.Log("log", fmt.Sprintf("hwe: log limit of %d bytes reached; further lines dropped", h.cfg.MaxLogBytes))
		return
	}
	h.mu.Unlock()
	h.cfg.Events.Log(stream, line)
}

// Progress reports how far the step is; fractions are clamped to 0..1.
func (h *Host) Progress(fraction float64, message string) {
	if h.cfg.Events == nil || math.IsNaN(fraction) {
		return
	}
	fraction = math.Max(0, math.Min(1, fraction))
	if len(message) > maxProgressMsgBytes {
		message = truncateUTF8(message, maxProgressMsgBytes)
	}
	h.cfg.Events.Progress(fraction, message)
}

// HTTPFetch performs a request the grant's net list allows. The URL, every
// redirect and every address connected to are checked; the response body
// is capped.
func (h *Host) HTTPFetch(ctx context.Context, req api.HTTPRequest) (*api.HTTPResponse, error) {
	if len(h.cfg.Grant.Net) == 0 {
		return nil, h.deny("net", "the step has no net grant (allow = { net = { \"host:port\" } })")
	}
	if h.netErr != nil {
		return nil, h.deny("net", "bad net grant: "+h.netErr.Error())
	}
	resp, err := h.fetch.fetch(ctx, req)
	if de, ok := err.(*api.DeniedError); ok {
		return nil, h.denied(de)
	}
	return resp, err
}

// KVGet reads a key of the step's tenant and workflow.
func (h *Host) KVGet(ctx context.Context, key string) ([]byte, bool, error) {
	if err := h.checkKV(key); err != nil {
		return nil, false, err
	}
	return h.cfg.KV.Get(ctx, h.scope, key)
}

// KVPut writes a key of the step's tenant and workflow.
func (h *Host) KVPut(ctx context.Context, key string, value []byte) error {
	if err := h.checkKV(key); err != nil {
		return err
	}
	if len(value) > h.cfg.MaxKVValueBytes {
		return &api.LimitError{Limit: "kv_value", Detail: fmt.Sprintf("value of %d bytes is larger than %d", len(value), h.cfg.MaxKVValueBytes)}
	}
	return h.cfg.KV.Put(ctx, h.scope, key, value)
}

func (h *Host) checkKV(key string) error {
	if !h.cfg.Grant.KV {
		return h.deny("kv", "the step has no kv grant (allow = { kv = true })")
	}
	if h.cfg.KV == nil {
		return fmt.Errorf("kv: no KV store configured")
	}
	if key == "" || len(key) > maxKVKeyBytes || !utf8.ValidString(key) {
		return fmt.Errorf("kv: a key must be 1 to %d bytes of UTF-8", maxKVKeyBytes)
	}
	return nil
}

// Secret returns a secret the step was granted by name.
func (h *Host) Secret(ctx context.Context, name string) (string, error) {
	if !ValidSecretName(name) {
		return "", h.deny("secrets", fmt.Sprintf("%q is not a valid secret name", name))
	}
	if !nameGranted(h.cfg.Grant.Secrets, name) {
		return "", h.deny("secrets", fmt.Sprintf("secret %s not granted (allow = { secrets = { %q } })", name, name))
	}
	if h.cfg.Secrets == nil {
		return "", fmt.Errorf("secret %s: no secret store configured", name)
	}
	v, ok, err := h.cfg.Secrets.Secret(ctx, name)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("secret %s is granted but not set", name)
	}
	return v, nil
}

func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// nameGranted reports whether a list of names grants name: "*" grants all,
// "PREFIX*" every name starting with PREFIX, anything else itself.
func nameGranted(list []string, name string) bool {
	for _, g := range list {
		if g == "*" || g == name {
			return true
		}
		if prefix, ok := strings.CutSuffix(g, "*"); ok && strings.HasPrefix(name, prefix) {
			return true
		}
	}
	return false
}
