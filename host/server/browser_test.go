package server

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// artifactDir is where browser tests leave their screenshots.
func artifactDir(t *testing.T) string {
	dir := os.Getenv("HWE_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "hwe-test-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

const xssWorkflow = `workflow = {
  name = "xss",
  steps = {
    evil = { language = "lua", code = [[
function run()
  print("<b>log line</b><img src=x onerror=window.__xss=3>")
  return { html = "<script>window.__xss = 1</script><img src=x onerror=window.__xss=2>" }
end
]] },
  },
}
`

// TestBrowserUI drives the embedded UI in headless Chromium: list, run,
// live graph to all green, a step's output, a step output with <script>
// shown as text, the editor showing a validation error at its line and then
// saving the fix, the 404 page, and the phone layout.
func TestBrowserUI(t *testing.T) {
	b := startBrowser(t)
	e := newEnv(t)
	e.writeWorkflow("chain", chainWorkflow)
	e.writeWorkflow("xss", xssWorkflow)
	art := artifactDir(t)

	// The list shows both workflows, in a table and in a grid.
	b.navigate(e.ts.URL + "/")
	b.waitFor("the workflow list", `document.querySelectorAll("tr[data-workflow]").length === 2`)
	b.eval(`[...document.querySelectorAll("button")].find(x => x.textContent.includes("Grid")).click()`)
	b.waitFor("the grid", `document.querySelectorAll(".card[data-workflow]").length === 2`)
	b.eval(`(() => { const s = document.querySelector("input[type=search]"); s.value = "xss"; s.dispatchEvent(new Event("input")); })()`)
	b.waitFor("search", `document.querySelectorAll(".card[data-workflow]").length === 1`)
	b.screenshot(filepath.Join(art, "workflows.png"))

	// Start a run from the workflow page and watch the graph turn green.
	open := e.exec.gate("b")
	b.navigate(e.ts.URL + "/workflows/chain")
	b.waitFor("the workflow graph", `document.querySelectorAll("svg.dag .node").length === 3`)
	b.click("#run-button")
	b.waitFor("the run page", `location.pathname.startsWith("/runs/") && document.querySelector("#run-graph svg")`)
	b.waitFor("step a green and b running, live", `document.querySelector('svg.dag .node[data-step="a"]').classList.contains("succeeded") &&
		document.querySelector('svg.dag .node[data-step="b"]').classList.contains("running")`)
	b.screenshot(filepath.Join(art, "run-live.png"))
	open()
	b.waitFor("all nodes green", `document.querySelectorAll("svg.dag .node.succeeded").length === 3`)
	b.waitFor("the run succeeded", `document.querySelector("#run-status").textContent.includes("succeeded")`)
	b.click(`.step-row[data-step="c"]`)
	b.waitFor("step c's output", `document.querySelector("#step-output").textContent.includes('"n": 3')`)
	b.click(`.step-row[data-step="a"]`)
	b.waitFor("step a's streamed log", `document.querySelector("#step-logs").textContent.includes("a says hi")`)
	b.screenshot(filepath.Join(art, "run-succeeded.png"))

	// A step output holding <script> is shown as text and never runs.
	id := e.startRun("xss", "")
	e.waitRun(id, "")
	b.navigate(e.ts.URL + "/runs/" + id)
	b.waitFor("the xss run", `document.querySelectorAll("svg.dag .node.succeeded").length === 1`)
	b.click(`.step-row[data-step="evil"]`)
	b.waitFor("the output", `document.querySelector("#step-output").textContent.includes("<script>window.__xss = 1</script>")`)
	b.waitFor("the log line", `document.querySelector("#step-logs").textContent.includes("<b>log line</b>")`)
	if got := b.eval(`[window.__xss === undefined, document.querySelectorAll("#app script, #app img, #app b").length]`); got.([]any)[0] != true || got.([]any)[1].(float64) != 0 {
		t.Fatalf("step output was parsed as HTML: %v", got)
	}
	b.screenshot(filepath.Join(art, "run-xss-escaped.png"))

	// The editor shows a validation problem at its line before saving.
	b.navigate(e.ts.URL + "/workflows/chain/edit")
	b.waitFor("the editor", `document.querySelector(".editor textarea") && document.querySelector("#problems li.ok")`)
	lines := strings.Split(chainWorkflow, "\n")
	badLine := 0
	for i, l := range lines {
		if strings.Contains(l, `depends_on = {"a"}`) {
			lines[i] = strings.Replace(l, `depends_on = {"a"}`, `depends_on = {"a"}, colour = "red"`, 1)
			badLine = i + 1
		}
	}
	setSource := func(src string) {
		b.eval(`(() => { const ta = document.querySelector(".editor textarea"); ta.value = ` + jsString(src) + `; ta.dispatchEvent(new Event("input")); })()`)
	}
	setSource(strings.Join(lines, "\n"))
	b.waitFor("the problem at its line", `document.querySelector('#problems li[data-line="`+itoa(badLine)+`"]') &&
		document.querySelector('.gutter .bad[data-line="`+itoa(badLine)+`"]')`)
	if msg := b.text(`#problems li[data-line="` + itoa(badLine) + `"]`); !strings.Contains(msg, "colour") {
		t.Fatalf("problem text %q", msg)
	}
	// Highlighted: strings coloured, and the coloured copy lines up with the text exactly.
	if hl := b.eval(`[document.querySelectorAll(".editor pre .tok-str").length,
		document.querySelector(".editor pre").textContent === document.querySelector(".editor textarea").value + "\n "]`).([]any); hl[0].(float64) == 0 || hl[1] != true {
		t.Fatalf("the source is not highlighted in step with the text: %v", hl)
	}
	b.screenshot(filepath.Join(art, "editor-problem.png"))
	fixed := strings.Replace(chainWorkflow, "three steps in a row", "fixed in the browser", 1)
	setSource(fixed)
	b.waitFor("no problems", `document.querySelector("#problems li.ok")`)
	b.click("#save-button")
	b.waitFor("the workflow page after saving", `location.pathname === "/workflows/chain" && document.body.textContent.includes("fixed in the browser")`)
	if src, _ := os.ReadFile(filepath.Join(e.dir, "chain.lua")); string(src) != fixed {
		t.Fatalf("saved file = %q", src)
	}

	// Unknown pages show the 404 page.
	b.navigate(e.ts.URL + "/no/such/page")
	b.waitFor("the 404 page", `document.querySelector("h1") && document.querySelector("h1").textContent === "Page Not Found"`)

	// Usable on a phone: nothing wider than the screen.
	b.viewport(390, 844, true)
	b.navigate(e.ts.URL + "/")
	b.waitFor("the list on a phone", `document.querySelectorAll("[data-workflow]").length === 2`)
	if w := b.eval(`document.documentElement.scrollWidth`).(float64); w > 391 {
		t.Fatalf("the list is %v px wide on a 390 px screen", w)
	}
	b.navigate(e.ts.URL + "/runs/" + id)
	b.waitFor("the run on a phone", `document.querySelectorAll("svg.dag .node.succeeded").length === 1`)
	if w := b.eval(`document.documentElement.scrollWidth`).(float64); w > 391 {
		t.Fatalf("the run page is %v px wide on a 390 px screen", w)
	}
	b.screenshot(filepath.Join(art, "run-phone.png"))
	t.Logf("screenshots in %s", art)
}

// TestBrowserLogin: with a token set, the UI asks for it and then works.
func TestBrowserLogin(t *testing.T) {
	b := startBrowser(t)
	e := newEnv(t, func(c *Config) { c.Token = "let-me-in" })
	e.writeWorkflow("chain", chainWorkflow)
	b.navigate(e.ts.URL + "/workflows/chain")
	b.waitFor("the login page", `location.pathname === "/login" && document.querySelector("#token")`)
	b.eval(`document.querySelector("#token").value = "wrong"; document.querySelector("form").requestSubmit()`)
	b.waitFor("the refusal", `document.querySelector("[role=alert]").textContent.includes("not valid")`)
	b.eval(`document.querySelector("#token").value = "let-me-in"; document.querySelector("form").requestSubmit()`)
	b.waitFor("the page asked for first", `location.pathname === "/workflows/chain" && document.querySelectorAll("svg.dag .node").length === 3`)
	b.waitFor("the log-out button", `!document.querySelector("#logout").hidden`)
	b.click("#logout")
	b.waitFor("logged out", `location.pathname === "/login"`)
}

func itoa(i int) string { return strconv.Itoa(i) }
