package server

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// browser is headless Chromium driven over the DevTools protocol through
// --remote-debugging-pipe (JSON messages separated by NUL bytes on fds 3
// and 4), so the browser tests need no library and no network.
type browser struct {
	t        *testing.T
	cmd      *exec.Cmd
	toChrome io.WriteCloser
	session  string

	mu      sync.Mutex
	nextID  int
	waiting map[int]chan cdpReply
	stderr  bytes.Buffer
}

type cdpReply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// findChromium returns the browser binary, or "" when none is installed.
func findChromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

func startBrowser(t *testing.T) *browser {
	t.Helper()
	bin := findChromium()
	if bin == "" {
		t.Fatal("the browser tests need Chromium: run `make deps` or apt-get install -y chromium")
	}
	inR, inW, _ := os.Pipe()   // we write, chrome reads fd 3
	outR, outW, _ := os.Pipe() // chrome writes fd 4, we read
	cmd := exec.Command(bin, "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
		"--user-data-dir="+t.TempDir(), "--no-first-run", "--no-default-browser-check", "--disable-extensions",
		"--disable-background-networking", "--disable-sync", "--metrics-recording-only", "--mute-audio",
		"--disable-dev-shm-usage", "about:blank")
	cmd.ExtraFiles = []*os.File{inR, outW}
	b := &browser{t: t, cmd: cmd, toChrome: inW, waiting: map[int]chan cdpReply{}}
	cmd.Stderr = &b.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	inR.Close()
	outW.Close()
	go b.readLoop(outR)
	t.Cleanup(func() {
		inW.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	var target struct{ TargetID string }
	b.call("", "Target.createTarget", map[string]any{"url": "about:blank"}, &target)
	var attached struct{ SessionID string }
	b.call("", "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &attached)
	b.session = attached.SessionID
	b.call(b.session, "Page.enable", nil, nil)
	b.call(b.session, "Runtime.enable", nil, nil)
	b.viewport(1280, 900, false)
	return b
}

func (b *browser) readLoop(r io.Reader) {
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		msg, err := br.ReadBytes(0)
		if err != nil {
			return
		}
		var m struct {
			ID int `json:"id"`
			cdpReply
		}
		if json.Unmarshal(msg[:len(msg)-1], &m) != nil || m.ID == 0 {
			continue // an event; the tests poll instead of listening
		}
		b.mu.Lock()
		ch := b.waiting[m.ID]
		delete(b.waiting, m.ID)
		b.mu.Unlock()
		if ch != nil {
			ch <- m.cdpReply
		}
	}
}

// call sends one DevTools command and decodes its result into out.
func (b *browser) call(session, method string, params any, out any) {
	b.t.Helper()
	b.mu.Lock()
	b.nextID++
	id := b.nextID
	ch := make(chan cdpReply, 1)
	b.waiting[id] = ch
	b.mu.Unlock()
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if session != "" {
		msg["sessionId"] = session
	}
	data, _ := json.Marshal(msg)
	if _, err := b.toChrome.Write(append(data, 0)); err != nil {
		b.t.Fatalf("%s: %v (%s)", method, err, b.stderr.String())
	}
	select {
	case r := <-ch:
		if r.Error != nil {
			b.t.Fatalf("%s: %s", method, r.Error.Message)
		}
		if out != nil {
			json.Unmarshal(r.Result, out)
		}
	case <-time.After(30 * time.Second):
		b.t.Fatalf("%s: no answer from the browser (%s)", method, b.stderr.String())
	}
}

func (b *browser) viewport(w, h int, mobile bool) {
	scale := 1
	if mobile {
		scale = 2
	}
	b.call(b.session, "Emulation.setDeviceMetricsOverride",
		map[string]any{"width": w, "height": h, "deviceScaleFactor": scale, "mobile": mobile}, nil)
}

func (b *browser) navigate(url string) {
	b.t.Helper()
	b.call(b.session, "Page.navigate", map[string]any{"url": url}, nil)
}

// eval runs a JavaScript expression in the page and returns its value.
func (b *browser) eval(expr string) any {
	b.t.Helper()
	var res struct {
		Result struct {
			Value any `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	b.call(b.session, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}, &res)
	if res.ExceptionDetails != nil {
		b.t.Fatalf("evaluating %s: %s %s", expr, res.ExceptionDetails.Text, res.ExceptionDetails.Exception.Description)
	}
	return res.Result.Value
}

// waitFor polls a JavaScript condition until it is true.
func (b *browser) waitFor(what, expr string) {
	b.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if v, _ := b.eval("(() => { try { return !!(" + expr + ") } catch (e) { return false } })()").(bool); v {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	body, _ := b.eval("document.body ? document.body.innerText.slice(0, 2000) : ''").(string)
	b.t.Fatalf("timed out waiting for %s (%s); page at %v shows:\n%s", what, expr, b.eval("location.href"), body)
}

func (b *browser) text(selector string) string {
	b.t.Helper()
	s, _ := b.eval(fmt.Sprintf("(document.querySelector(%q) || {}).textContent || ''", selector)).(string)
	return s
}

func (b *browser) click(selector string) {
	b.t.Helper()
	b.waitFor("element "+selector, fmt.Sprintf("document.querySelector(%q)", selector))
	b.eval(fmt.Sprintf("document.querySelector(%q).click()", selector))
}

// screenshot writes a PNG of the page to path.
func (b *browser) screenshot(path string) {
	b.t.Helper()
	var shot struct{ Data string }
	b.call(b.session, "Page.captureScreenshot", map[string]any{"format": "png"}, &shot)
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil || len(png) == 0 {
		b.t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return strings.ReplaceAll(string(b), "\u2028", "\\u2028")
}
