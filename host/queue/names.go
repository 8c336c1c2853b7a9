package queue

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// DefaultPrefix names the streams, buckets and subjects of one hwe
// deployment. Two deployments can share a NATS cluster with different prefixes.
const DefaultPrefix = "hwe"

var validPrefix = regexp.MustCompile(`^[A-Za-z0-9-]+$`)

// names derives every stream, bucket and subject name from the prefix, so
// the coordinator and the workers agree on them without configuration.
type names struct{ prefix string }

func newNames(prefix string) (names, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if !validPrefix.MatchString(prefix) {
		return names{}, fmt.Errorf("queue prefix %q: use letters, digits and dashes", prefix)
	}
	return names{prefix: prefix}, nil
}

func (n names) upper() string { return strings.ToUpper(strings.ReplaceAll(n.prefix, "-", "_")) }

// Streams and buckets.
func (n names) taskStream() string   { return n.upper() + "_TASKS" }
func (n names) resultStream() string { return n.upper() + "_RESULTS" }
func (n names) stateBucket() string  { return n.prefix + "_runs" }
func (n names) blobBucket() string   { return n.prefix + "_blobs" }

// resultConsumer is the coordinator's durable consumer on the result stream.
func (n names) resultConsumer() string { return "coordinator" }

// Subjects. A task subject routes by language and the labels a step needs:
// <prefix>.task.<language>.<labels>.
func (n names) taskSubject(lang, labelKey string) string {
	return n.prefix + ".task." + token(lang) + "." + labelKey
}
func (n names) taskWildcard() string { return n.prefix + ".task.>" }

// readySubject rings idle workers after a task was queued on the task subject
// with the same language and labels (core NATS, no delivery guarantee: the
// workers also poll).
func (n names) readySubject(lang, labelKey string) string {
	return n.prefix + ".ready." + token(lang) + "." + labelKey
}

func (n names) resultSubject(runID string) string { return n.prefix + ".result." + token(runID) }
func (n names) resultWildcard() string            { return n.prefix + ".result.>" }

// hostSubject carries one execution's host API calls to the coordinator.
func (n names) hostSubject(key string, gen uint64) string {
	return n.prefix + ".host." + key + "." + strconv.FormatUint(gen, 10)
}
func (n names) hostWildcard() string { return n.prefix + ".host.>" }

// parseHostSubject returns the state key and generation of a host subject.
func (n names) parseHostSubject(subject string) (key string, gen uint64, ok bool) {
	rest, found := strings.CutPrefix(subject, n.prefix+".host.")
	if !found {
		return "", 0, false
	}
	i := strings.LastIndexByte(rest, '.')
	if i < 0 {
		return "", 0, false
	}
	gen, err := strconv.ParseUint(rest[i+1:], 10, 64)
	if err != nil || strings.Count(rest[:i], ".") != 2 {
		return "", 0, false
	}
	return rest[:i], gen, true
}

func (n names) cancelSubject(key string, gen uint64) string {
	return n.prefix + ".cancel." + key + "." + strconv.FormatUint(gen, 10)
}
func (n names) cancelWildcard() string { return n.prefix + ".cancel.>" }

// configKey holds the coordinator's settings that workers must share (the
// lease and the delivery limit) in the state bucket.
const configKey = "config"

// stateKey is the run-state key of one attempt of one step: run.step.attempt.
func stateKey(runID, step string, attempt int) string {
	return token(runID) + "." + token(step) + "." + strconv.Itoa(attempt)
}

// execID names one execution of a state key: the message id of its task and
// result. A new generation is published when an attempt must be sent again
// (a retry of a run that failed before), so stale results never match.
func execID(key string, gen uint64) string { return key + "." + strconv.FormatUint(gen, 10) }

// token makes a name usable as one subject token and in KV keys. Names of
// letters, digits and dashes stay as they are (readable in `nats` tools);
// anything else is "_" followed by its unpadded base64url form, so distinct
// names never collide.
func token(s string) string {
	if s != "" && plainToken(s) {
		return s
	}
	return "_" + base64.RawURLEncoding.EncodeToString([]byte(s))
}

func plainToken(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// untoken reverses token.
func untoken(t string) (string, error) {
	if enc, ok := strings.CutPrefix(t, "_"); ok {
		b, err := base64.RawURLEncoding.DecodeString(enc)
		return string(b), err
	}
	return t, nil
}

// noLabels is the label key of steps that need no labels.
const noLabels = "-"

// labelKey is the canonical subject token of a label set.
func labelKey(labels map[string]string) string {
	if len(labels) == 0 {
		return noLabels
	}
	keys := slices.Sorted(maps.Keys(labels))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + labels[k]
	}
	return token(strings.Join(parts, ","))
}

// ParseLabels reads "k=v,k2=v2" (spaces around items are ignored). A label
// without "=" means "k=true".
func ParseLabels(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		k, v, found := strings.Cut(item, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !found {
			v = "true"
		}
		if k == "" || strings.ContainsAny(k, ",=") {
			return nil, fmt.Errorf("label %q: want key=value", item)
		}
		out[k] = v
	}
	return out, nil
}

// maxWorkerLabels bounds a worker's labels: it listens on every subset of
// them (a step needing {gpu} runs on a worker with {gpu, region}), which is
// 2^n task subjects per language.
const maxWorkerLabels = 6

// labelSubsets returns every subset of labels, the empty one first.
func labelSubsets(labels map[string]string) []map[string]string {
	keys := slices.Sorted(maps.Keys(labels))
	var out []map[string]string
	for mask := 0; mask < 1<<len(keys); mask++ {
		sub := map[string]string{}
		for i, k := range keys {
			if mask&(1<<i) != 0 {
				sub[k] = labels[k]
			}
		}
		out = append(out, sub)
	}
	return out
}

// consumerName is the durable consumer of one task subject, shared by every
// worker that serves it (each message goes to one of them).
func consumerName(subject string) string {
	sum := sha256.Sum256([]byte(subject))
	return "w-" + hex.EncodeToString(sum[:10])
}
