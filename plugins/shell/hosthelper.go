package shell

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/hwe-run/hwe/host/api"
	"github.com/hwe-run/hwe/plugins/internal/hostcall"
)

// The host API reaches shell steps through `hwe-host`, a small bash script
// the runner writes for each step into a folder of its own on the step's
// PATH. A call goes like this, through files in the step's private folder
// (which the step can see whatever sandbox it runs in):
//
//  1. hwe-host writes its arguments to .hwe-host-ID.req (their number on a
//     line, then each ended by a NUL byte, then, for a command that reads
//     its standard input, all of that input), makes the FIFO
//     .hwe-host-ID.out and opens it;
//  2. it writes "ID\n" to the FIFO .hwe-host.bell, which the runner keeps
//     open while the step runs (a line that short is written atomically, so
//     concurrent calls do not mix);
//  3. the runner reads the arguments and removes both files (hwe-host
//     holds the FIFO open), forwards the call to the step's api.Host, and
//     writes "EXIT LENGTH HOW\n" and LENGTH bytes to the FIFO: the value on
//     success (printed on stdout), else the message (printed on stderr);
//  4. hwe-host prints them and exits with EXIT.
//
// hwe-host is bash, and every program it starts costs a millisecond or
// more, so it starts only mkfifo, plus head for an answer that bash's own
// read cannot take whole (HOW = "b": NUL bytes, or too long to read a byte
// at a time; "t" otherwise).
//
// Nothing needs an inherited descriptor or a socket, so the call works from
// any process the step starts, inside the OS sandbox too (which allows only
// Unix sockets and no new mounts). The runner opens the files relative to
// a descriptor of the folder, refuses symbolic links and anything that is
// not what it should be, and caps their size.

// Exit codes of hwe-host besides 0.
const (
	exitMissing = 1  // kv-get of a key that is not set
	exitUsage   = 2  // bad arguments
	exitFailed  = 70 // the call failed (EX_SOFTWARE)
	exitDenied  = 77 // the grant refused the call (EX_NOPERM)
	exitHTTP    = 22 // http-fetch --fail got a status of 400 or more (as curl)
)

const (
	helperBinDir = ".hwe-bin"
	helperName   = "hwe-host"
	bellName     = ".hwe-host.bell"
	callPrefix   = ".hwe-host-"

	maxHostRequest = 32 << 20 // the arguments of one call
	maxHostCalls   = 16       // calls served at once
	answerTimeout  = time.Minute
)

var callID = regexp.MustCompile(`^[0-9]{1,10}-[0-9]{1,12}$`)

// helperScript is hwe-host for a step whose private folder the step sees
// at dir. The folder is put in at write time, so the step's environment
// cannot point the helper elsewhere; -p keeps BASH_ENV and exported
// functions out of it.
func helperScript(bash, dir string) string {
	return "#!" + bash + " -p\n" + `# hwe-host: the hwe host API for this shell step. Written by hwe for the
# step; ` + "`hwe-host help`" + ` explains it. See plugins/shell/hosthelper.go.
PATH=/usr/local/bin:/usr/bin:/bin
LC_ALL=C
dir=` + shellQuote(dir) + `
case "${1-}" in
help|-h|--help) printf '%s\n' ` + shellQuote(helperUsage) + `; exit 0 ;;
"") printf '%s\n' ` + shellQuote(helperUsage) + ` >&2; exit 2 ;;
esac
id=$$-$RANDOM$RANDOM
req="$dir/` + callPrefix + `$id.req" out="$dir/` + callPrefix + `$id.out"
# kv-put KEY (no VALUE) and http-fetch -d @- read the value from stdin.
stdin=
case $1 in
kv-put|kv_put) [ $# -eq 2 ] && stdin=1 ;;
http-fetch|http_fetch) for a in "$@"; do [ "$a" = @- ] && stdin=1; done ;;
esac
{ printf '%d\n' $#; printf '%s\0' "$@"; [ -z "$stdin" ] || cat; } >"$req" || exit 70
mkfifo -m 600 -- "$out" || exit 70
exec 3<>"$out" || exit 70
if ! { printf '%s\n' "$id" >"$dir/` + bellName + `"; } 2>/dev/null; then
	echo "hwe-host: cannot reach hwe (the host API works only while the step runs)" >&2
	rm -f -- "$req" "$out"
	exit 70
fi
IFS=' ' read -r code len how <&3 || { echo "hwe-host: no answer from hwe" >&2; exit 70; }
[ "$code" -eq 0 ] || exec >&2
if [ "$how" = t ]; then
	read -r -N "$len" -d '' text <&3
	printf '%s' "$text"
elif [ "$len" -gt 0 ]; then
	head -c "$len" <&3
fi
exit "$code"
`
}

const helperUsage = `usage: hwe-host COMMAND [ARG...]   (the hwe host API, checked against the step's grant)
  hwe-host log MESSAGE...          a line in the step's log
  hwe-host progress FRACTION [MESSAGE...]   FRACTION from 0 to 1
  hwe-host kv-get KEY              print the value; exit 1 if KEY is not set
  hwe-host kv-put KEY [VALUE]      without VALUE: the value is read from stdin
  hwe-host secret NAME             print the secret
  hwe-host http-fetch [-X METHOD] [-H 'Name: value']... [-d BODY|@-] [--json] [--fail] URL
                                   print the body (-d @-: the body is read from stdin;
                                   --json: print {"body","headers","status"};
                                   --fail: exit 22 if the status is 400 or more)
A call the grant refuses exits 77 with a message naming the capability; other failures exit 70.`

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// hostCalls serves hwe-host for one step.
type hostCalls struct {
	ctx    context.Context
	cancel context.CancelFunc
	host   api.Host
	dir    int      // descriptor of the step's private folder
	bell   *os.File // the bell FIFO, read-write so it never reaches EOF
	slots  chan struct{}
	wg     sync.WaitGroup
}

// installHostHelper writes hwe-host into dir/.hwe-bin (not writable by the
// step when it runs as a uid of its own) and makes the bell. insideDir is
// where the step sees dir. It returns the folder to put on PATH.
func installHostHelper(bash, dir, insideDir string) (binDir string, err error) {
	binDir = filepath.Join(dir, helperBinDir)
	if err := os.Mkdir(binDir, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(binDir, helperName), []byte(helperScript(bash, insideDir)), 0o755); err != nil {
		return "", err
	}
	bell := filepath.Join(dir, bellName)
	if err := unix.Mkfifo(bell, 0o600); err != nil {
		return "", fmt.Errorf("make %s: %w", bell, err)
	}
	// The step may run as another uid: it must be able to ring.
	if err := os.Chmod(bell, 0o622); err != nil {
		return "", err
	}
	return binDir, nil
}

// serveHostCalls starts serving the calls hwe-host makes from dir, which
// installHostHelper prepared. stop ends it once the step is over.
func serveHostCalls(ctx context.Context, host api.Host, dir string) (stop func(), err error) {
	dirFD, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	bellFD, err := unix.Openat(dirFD, bellName, unix.O_RDWR|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(dirFD)
		return nil, fmt.Errorf("open the host API bell: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &hostCalls{
		ctx: ctx, cancel: cancel, host: host, dir: dirFD,
		bell:  os.NewFile(uintptr(bellFD), bellName), // non-blocking: Close ends a pending read
		slots: make(chan struct{}, maxHostCalls),
	}
	if s.host == nil {
		s.host = api.NopHost{}
	}
	reading := make(chan struct{})
	go func() {
		defer close(reading)
		s.readBell()
	}()
	return func() {
		_ = s.bell.Close()
		<-reading
		s.cancel()
		s.wg.Wait()
		unix.Close(s.dir)
	}, nil
}

func (s *hostCalls) readBell() {
	br := bufio.NewReaderSize(s.bell, 4096)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		id := strings.TrimSuffix(line, "\n")
		if !callID.MatchString(id) {
			continue // not hwe-host's: ignore
		}
		select {
		case s.slots <- struct{}{}:
		case <-s.ctx.Done():
			return
		}
		s.wg.Add(1)
		go func() {
			defer func() { <-s.slots; s.wg.Done() }()
			s.serve(id)
		}()
	}
}

// serve answers one call.
func (s *hostCalls) serve(id string) {
	outName := callPrefix + id + ".out"
	out, err := s.openFile(outName, unix.O_WRONLY|unix.O_NONBLOCK, unix.S_IFIFO)
	if err != nil {
		_ = unix.Unlinkat(s.dir, callPrefix+id+".req", 0)
		return // hwe-host is gone (or it was not hwe-host): nobody to answer
	}
	defer out.Close()
	_ = unix.Unlinkat(s.dir, outName, 0) // hwe-host has it open
	stop := context.AfterFunc(s.ctx, func() { _ = out.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()
	_ = out.SetWriteDeadline(time.Now().Add(answerTimeout))

	code, text := exitFailed, ""
	if c, err := s.readArgs(callPrefix + id + ".req"); err != nil {
		text = "hwe-host: " + err.Error() + "\n"
	} else {
		code, text = runHostCommand(s.ctx, s.host, c)
	}
	how := "t"
	if len(text) > maxReadText || strings.IndexByte(text, 0) >= 0 {
		how = "b"
	}
	_, _ = io.WriteString(out, strconv.Itoa(code)+" "+strconv.Itoa(len(text))+" "+how+"\n"+text)
}

// maxReadText is the longest answer hwe-host takes with bash's read, which
// reads a FIFO a byte at a time; longer ones go through head.
const maxReadText = 16 << 10

// openFile opens name in the step's folder, refusing symbolic links and
// files of another type than kind (unix.S_IFREG, unix.S_IFIFO).
func (s *hostCalls) openFile(name string, flags int, kind uint32) (*os.File, error) {
	fd, err := unix.Openat(s.dir, name, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if st.Mode&unix.S_IFMT != kind || st.Nlink > 1 {
		unix.Close(fd)
		return nil, errors.New("not a file hwe-host made")
	}
	return os.NewFile(uintptr(fd), name), nil
}

// call is one hwe-host command line and, for commands that read it, its
// standard input.
type call struct {
	args  []string
	stdin string
}

func (s *hostCalls) readArgs(name string) (call, error) {
	f, err := s.openFile(name, unix.O_RDONLY|unix.O_NONBLOCK, unix.S_IFREG)
	if err != nil {
		return call{}, fmt.Errorf("reading the call: %w", err)
	}
	defer f.Close()
	_ = unix.Unlinkat(s.dir, name, 0)
	b, err := io.ReadAll(io.LimitReader(f, maxHostRequest+1))
	if err != nil {
		return call{}, fmt.Errorf("reading the call: %w", err)
	}
	if len(b) > maxHostRequest {
		return call{}, fmt.Errorf("the call is larger than %d bytes", maxHostRequest)
	}
	return parseCall(b)
}

// parseCall decodes a .req file: "N\n", N arguments each ended by NUL,
// then the standard input, if any.
func parseCall(b []byte) (call, error) {
	bad := errors.New("reading the call: it is incomplete")
	head, rest, ok := strings.Cut(string(b), "\n")
	n, err := strconv.Atoi(head)
	if !ok || err != nil || n < 0 || n > len(rest) {
		return call{}, bad
	}
	c := call{args: make([]string, 0, n)}
	for range n {
		arg, after, ok := strings.Cut(rest, "\x00")
		if !ok {
			return call{}, bad
		}
		c.args = append(c.args, arg)
		rest = after
	}
	c.stdin = rest
	return c, nil
}

// runHostCommand performs one hwe-host command line and returns its exit
// code and what to print (stdout if the code is 0, else stderr).
func runHostCommand(ctx context.Context, host api.Host, c call) (code int, text string) {
	args := c.args
	usage := func(msg string) (int, string) {
		return exitUsage, "hwe-host: " + msg + "\n" + helperUsage + "\n"
	}
	if len(args) == 0 {
		return usage("no command")
	}
	cmd, rest := strings.ReplaceAll(args[0], "_", "-"), args[1:]
	var op string
	var callArgs map[string]any
	var fetch fetchOptions
	switch cmd {
	case "log":
		op, callArgs = hostcall.OpLog, map[string]any{"line": strings.Join(rest, " ")}
	case "progress":
		if len(rest) < 1 {
			return usage("progress needs a FRACTION")
		}
		f, err := strconv.ParseFloat(rest[0], 64)
		if err != nil {
			return usage("progress: " + strconv.Quote(rest[0]) + " is not a number")
		}
		op, callArgs = hostcall.OpProgress, map[string]any{"fraction": f, "message": strings.Join(rest[1:], " ")}
	case "kv-get":
		if len(rest) != 1 {
			return usage("kv-get needs one KEY")
		}
		op, callArgs = hostcall.OpKVGet, map[string]any{"key": rest[0]}
	case "kv-put":
		switch len(rest) {
		case 1:
			op, callArgs = hostcall.OpKVPut, kvPutArgs(rest[0], c.stdin)
		case 2:
			op, callArgs = hostcall.OpKVPut, kvPutArgs(rest[0], rest[1])
		default:
			return usage("kv-put needs a KEY and a VALUE (or the value on stdin)")
		}
	case "secret":
		if len(rest) != 1 {
			return usage("secret needs one NAME")
		}
		op, callArgs = hostcall.OpSecret, map[string]any{"name": rest[0]}
	case "http-fetch":
		var err error
		if fetch, err = parseFetchArgs(rest); err != nil {
			return usage("http-fetch: " + err.Error())
		}
		if fetch.hasBody && fetch.body == "@-" {
			fetch.body = c.stdin
		}
		op, callArgs = hostcall.OpHTTPFetch, fetch.args()
	default:
		return usage("unknown command " + strconv.Quote(args[0]))
	}

	raw, err := json.Marshal(callArgs)
	if err != nil {
		return exitFailed, "hwe-host: " + err.Error() + "\n"
	}
	answer := hostcall.Serve(ctx, host, op, raw)
	if e, ok := answer["error"].(map[string]any); ok {
		msg, _ := e["message"].(string)
		if _, denied := e["capability"]; denied {
			return exitDenied, "hwe-host: " + msg + "\n"
		}
		return exitFailed, "hwe-host: " + msg + "\n"
	}
	switch op {
	case hostcall.OpKVGet:
		if found, _ := answer["found"].(bool); !found {
			return exitMissing, ""
		}
		return 0, decodedString(answer, "value")
	case hostcall.OpSecret:
		v, _ := answer["value"].(string)
		return 0, v
	case hostcall.OpHTTPFetch:
		return fetch.output(answer["value"].(map[string]any))
	}
	return 0, ""
}

// kvPutArgs are kv_put's arguments; a value that is not UTF-8 (it came
// from stdin) travels base64-encoded.
func kvPutArgs(key, value string) map[string]any {
	if utf8.ValidString(value) {
		return map[string]any{"key": key, "value": value}
	}
	return map[string]any{"key": key, "value": base64.StdEncoding.EncodeToString([]byte(value)), "encoding": "base64"}
}

// decodedString returns m[key] as the bytes it stands for.
func decodedString(m map[string]any, key string) string {
	s, _ := m[key].(string)
	if m["encoding"] == "base64" {
		if b, err := base64.StdEncoding.DecodeString(s); err == nil {
			return string(b)
		}
	}
	return s
}

// fetchOptions are http-fetch's arguments, curl-like.
type fetchOptions struct {
	url, method, body string
	hasBody           bool
	headers           map[string]string
	json, fail        bool
}

func parseFetchArgs(args []string) (fetchOptions, error) {
	o := fetchOptions{method: "GET"}
	for i := 0; i < len(args); i++ {
		a := args[i]
		value := func() (string, error) {
			if i+1 >= len(args) {
				return "", fmt.Errorf("%s needs a value", a)
			}
			i++
			return args[i], nil
		}
		var err error
		switch a {
		case "-X", "--request":
			o.method, err = value()
		case "-H", "--header":
			var h string
			if h, err = value(); err == nil {
				name, v, ok := strings.Cut(h, ":")
				if !ok || strings.TrimSpace(name) == "" {
					return o, fmt.Errorf("header %q is not 'Name: value'", h)
				}
				if o.headers == nil {
					o.headers = map[string]string{}
				}
				o.headers[strings.TrimSpace(name)] = strings.TrimSpace(v)
			}
		case "-d", "--data":
			o.body, err = value()
			o.hasBody = true
			if o.method == "GET" {
				o.method = "POST"
			}
		case "--json":
			o.json = true
		case "--fail", "-f":
			o.fail = true
		default:
			if strings.HasPrefix(a, "-") || o.url != "" {
				return o, fmt.Errorf("unexpected argument %q", a)
			}
			o.url = a
		}
		if err != nil {
			return o, err
		}
	}
	if o.url == "" {
		return o, errors.New("no URL")
	}
	return o, nil
}

func (o fetchOptions) args() map[string]any {
	m := map[string]any{"url": o.url, "method": o.method}
	if o.headers != nil {
		m["headers"] = o.headers
	}
	if o.hasBody {
		if utf8.ValidString(o.body) {
			m["body"] = o.body
		} else {
			m["body"], m["encoding"] = base64.StdEncoding.EncodeToString([]byte(o.body)), "base64"
		}
	}
	return m
}

func (o fetchOptions) output(resp map[string]any) (int, string) {
	status, _ := resp["status"].(int)
	if o.fail && status >= 400 {
		return exitHTTP, fmt.Sprintf("hwe-host: %s answered HTTP %d\n", o.url, status)
	}
	body := decodedString(resp, "body")
	if !o.json {
		return 0, body
	}
	doc, err := api.MarshalCanonical(map[string]any{"status": status, "headers": resp["headers"], "body": body})
	if err != nil {
		return exitFailed, "hwe-host: " + err.Error() + "\n"
	}
	return 0, string(doc) + "\n"
}
