package queue

import (
	"errors"
	"reflect"
	"testing"

	"github.com/hwe-run/hwe/host/api"
)

func TestTokens(t *testing.T) {
	for _, s := range []string{"plain-name", "with.dot", "with space", "_leading", "ünïcode", "", "a>b*c", "01KABCDEF"} {
		tok := token(s)
		if !validPrefix.MatchString(tok) && !(len(tok) > 0 && tok[0] == '_') {
			t.Errorf("token(%q) = %q", s, tok)
		}
		for _, c := range tok {
			if c == '.' || c == '*' || c == '>' || c == ' ' {
				t.Errorf("token(%q) = %q is not one subject token", s, tok)
			}
		}
		back, err := untoken(tok)
		if err != nil || back != s {
			t.Errorf("untoken(token(%q)) = %q, %v", s, back, err)
		}
	}
	if token("a.b") == token("a_b") || token("_x") == token("x") {
		t.Error("distinct names share a token")
	}
	n, _ := newNames("")
	key := stateKey("run 1", "step.x", 2)
	subject := n.hostSubject(key, 77)
	k, gen, ok := n.parseHostSubject(subject)
	if !ok || k != key || gen != 77 {
		t.Errorf("parseHostSubject(%q) = %q %d %v", subject, k, gen, ok)
	}
	if _, err := newNames("bad.prefix"); err == nil {
		t.Error("a prefix with a dot was accepted")
	}
}

func TestLabels(t *testing.T) {
	l, err := ParseLabels(" gpu , region=eu,zone = a ")
	if err != nil || !reflect.DeepEqual(l, map[string]string{"gpu": "true", "region": "eu", "zone": "a"}) {
		t.Fatalf("ParseLabels: %v %v", l, err)
	}
	if _, err := ParseLabels("=x"); err == nil {
		t.Error("an empty label name was accepted")
	}
	if labelKey(nil) != noLabels || labelKey(map[string]string{"b": "1", "a": "2"}) != labelKey(map[string]string{"a": "2", "b": "1"}) {
		t.Error("label keys are not canonical")
	}
	subs := labelSubsets(map[string]string{"a": "1", "b": "2"})
	if len(subs) != 4 || len(subs[0]) != 0 {
		t.Errorf("subsets %v", subs)
	}
	// A step needing {a} matches a worker with {a, b}: its key is one of the worker's.
	want := labelKey(map[string]string{"a": "1"})
	found := false
	for _, s := range subs {
		found = found || labelKey(s) == want
	}
	if !found {
		t.Error("the worker does not listen for a subset of its labels")
	}
}

func TestWireErrorsKeepTheirType(t *testing.T) {
	for _, err := range []error{
		&api.StepError{Message: "boom", File: "w.lua", Line: 3, Trace: "tb"},
		&api.DeniedError{Capability: "net", Detail: "example.com not granted"},
		&api.LimitError{Limit: "memory", Detail: "64 MiB"},
		&api.RunnerExitedError{Runner: "python", Reason: "signal: killed"},
		errors.New("plain"),
	} {
		back := encodeError(err).decode()
		if back.Error() != err.Error() || reflect.TypeOf(back) != reflect.TypeOf(err) && reflect.TypeOf(err).String() != "*errors.errorString" {
			t.Errorf("%T %v came back as %T %v", err, err, back, back)
		}
	}
	if encodeError(nil) != nil || (*wireError)(nil).decode() != nil {
		t.Error("nil errors do not stay nil")
	}
}
