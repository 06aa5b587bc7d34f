package integration

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// The dashboard's tests drive Debian's Chromium (/usr/bin/chromium) with
// chromedp. Without the browser they skip, unless GATEWAY_REQUIRE_CHROMIUM=1
// (set by .ci/run), which makes a missing browser a failure. Screenshots of
// every page go to integration/artifacts/dashboard/ (not committed).

// artifactsDir is where the browser tests leave their screenshots.
var artifactsDir = filepath.Join("artifacts", "dashboard")

// chromiumPath finds the browser, or skips (fails under
// GATEWAY_REQUIRE_CHROMIUM=1) the test.
func chromiumPath(t *testing.T) string {
	t.Helper()
	candidates := []string{os.Getenv("GATEWAY_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	if os.Getenv("GATEWAY_REQUIRE_CHROMIUM") == "1" {
		t.Fatal("GATEWAY_REQUIRE_CHROMIUM=1 but no Chromium at /usr/bin/chromium (apt-get install chromium)")
	}
	t.Skip("no Chromium at /usr/bin/chromium (apt-get install chromium); set GATEWAY_REQUIRE_CHROMIUM=1 to fail instead")
	return ""
}

// browser is one headless Chromium with a fresh profile, recording every
// request it makes and every console error, exception and log error.
type browser struct {
	t      *testing.T
	ctx    context.Context
	origin string

	mu       sync.Mutex
	requests []string // URLs the page asked for
	problems []string // console errors, exceptions, log errors
}

// newBrowser starts Chromium for pages of origin; it stops when the test ends.
func newBrowser(t *testing.T, origin string) *browser {
	t.Helper()
	exe := chromiumPath(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	b := &browser{t: t, origin: origin}
	// A bound for a wedged browser, not a timing assertion.
	base, cancelTimeout := context.WithTimeout(context.Background(), 5*time.Minute)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(base, opts...)
	// The listener runs in the tab's message loop, in order: an event
	// that came before a command's reply is recorded when it returns.
	ctx, cancelCtx := chromedp.NewContext(allocCtx, chromedp.WithListener(b.record))
	b.ctx = ctx
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
		cancelTimeout()
	})
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatalf("enabling the network domain: %v", err)
	}
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("enabling the log domain: %v", err)
	}
	return b
}

// record keeps the events the checks read.
func (b *browser) record(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch e := ev.(type) {
	case *network.EventRequestWillBeSent:
		b.requests = append(b.requests, e.Request.URL)
	case *runtime.EventConsoleAPICalled:
		switch e.Type {
		case runtime.ConsoleAPICalledTypeError, runtime.ConsoleAPICalledTypeWarning, runtime.ConsoleAPICalledTypeAssert:
			var args []string
			for _, a := range e.Args {
				args = append(args, string(a.Value)+a.Description)
			}
			b.problems = append(b.problems, fmt.Sprintf("console.%s: %s", e.Type, strings.Join(args, " ")))
		}
	case *runtime.EventExceptionThrown:
		b.problems = append(b.problems, fmt.Sprintf("exception: %s %s:%d", e.ExceptionDetails.Text, e.ExceptionDetails.URL, e.ExceptionDetails.LineNumber))
	case *cdplog.EventEntryAdded:
		if e.Entry.Level == cdplog.EntryLevelError || e.Entry.Level == cdplog.EntryLevelWarning {
			b.problems = append(b.problems, fmt.Sprintf("log %s (%s): %s %s", e.Entry.Level, e.Entry.Source, e.Entry.Text, e.Entry.URL))
		}
	}
}

// do runs browser actions, failing the test on error.
func (b *browser) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// get runs one browser action that returns a value.
func get[T any](b *browser, a chromedp.Action[T]) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, a)
	if err != nil {
		b.t.Fatalf("browser: %v", err)
	}
	return v
}

// open loads a page of the origin and waits until sel is visible.
func (b *browser) open(path, sel string) {
	b.t.Helper()
	b.do(chromedp.Navigate(b.origin+path), chromedp.WaitVisible(chromedp.CSS(sel)))
}

// click clicks sel and waits until next is visible on the page that follows.
func (b *browser) click(sel, next string) {
	b.t.Helper()
	b.do(markStale, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible), waitNewPage(next))
}

// markStale marks the page shown now, so that waitNewPage waits for the
// page that replaces it rather than finding next on this one.
var markStale = chromedp.Evaluate[chromedp.Void](`document.body.setAttribute("data-stale", "1")`)

// waitNewPage waits until a page that markStale did not mark shows sel.
func waitNewPage(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.WaitVisible(chromedp.CSS("body:not([data-stale]) " + sel))
}

// text is the visible text of the first element matching sel.
func (b *browser) text(sel string) string {
	b.t.Helper()
	return strings.TrimSpace(get(b, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible)))
}

// value is the value of the form field sel.
func (b *browser) value(sel string) string {
	b.t.Helper()
	return get(b, chromedp.Value(chromedp.CSS(sel)))
}

// exists reports whether the page has an element matching sel.
func (b *browser) exists(sel string) bool {
	b.t.Helper()
	return get(b, chromedp.Evaluate[bool](fmt.Sprintf("document.querySelector(%q) !== null", sel)))
}

// attr is an attribute of the first element matching sel.
func (b *browser) attr(sel, name string) string {
	b.t.Helper()
	return get(b, chromedp.Evaluate[string](fmt.Sprintf("document.querySelector(%q).getAttribute(%q)", sel, name)))
}

// submit fills the form's fields (selector → value), submits it with
// button, and waits until next is visible on the page that follows.
func (b *browser) submit(fields map[string]string, button, next string) {
	b.t.Helper()
	var actions []chromedp.Action[chromedp.Void]
	for sel, v := range fields {
		actions = append(actions, chromedp.Clear(chromedp.CSS(sel)), chromedp.SendKeys(chromedp.CSS(sel), v))
	}
	actions = append(actions, markStale, chromedp.Click(chromedp.CSS(button), chromedp.NodeVisible), waitNewPage(next))
	b.do(actions...)
}

// inlineCode finds what a strict CSP would block: inline script, inline
// styles, event handler attributes, javascript: links.
var inlineCode = regexp.MustCompile(`(?i)<script>|<script[^>]*>[^<]|<style|\sstyle=|\son[a-z]+=|javascript:`)

// screenshot saves the whole page as artifacts/dashboard/<name>.png, and
// checks that the page has no inline code.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	html := get(b, chromedp.OuterHTML(chromedp.CSS("html")))
	if m := inlineCode.FindString(html); m != "" {
		b.t.Errorf("page %s has inline code %q", name, m)
	}
	png := get(b, chromedp.FullScreenshot(100))
	if err := os.MkdirAll(artifactsDir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(artifactsDir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// cookie is the browser's cookie called name for the dashboard.
func (b *browser) cookie(name string) network.Cookie {
	b.t.Helper()
	res, err := chromedp.Call(b.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{b.origin + "/ui/"}})
	if err != nil {
		b.t.Fatalf("reading cookies: %v", err)
	}
	for _, c := range res.Cookies {
		if c.Name == name {
			return *c
		}
	}
	b.t.Fatalf("no cookie %q in the browser (have %d)", name, len(res.Cookies))
	return network.Cookie{}
}

// checkClean fails the test if the page asked another origin for anything,
// or if a console error, exception or log error was seen.
func (b *browser) checkClean() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.requests) == 0 {
		b.t.Fatal("the browser's network log is empty: the network events were not recorded")
	}
	for _, u := range b.requests {
		// data: URLs are Chromium's own (the date picker's icon): they
		// are decoded in the browser and never reach a network.
		if !strings.HasPrefix(u, b.origin+"/") && !strings.HasPrefix(u, "data:") {
			b.t.Errorf("the page requested something outside its origin: %s", u)
		}
	}
	for _, p := range b.problems {
		b.t.Errorf("browser: %s", p)
	}
}

// noRedirects is a client that shows redirects instead of following them.
var noRedirects = &http.Client{
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout:       60 * time.Second,
}

// dashboardRequest sends a request to the dashboard with a session cookie
// (and, for a form, its fields) through net/http, outside the browser.
func dashboardRequest(t *testing.T, method, target, cookie string, form url.Values) *http.Response {
	t.Helper()
	body := strings.NewReader("")
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: "llmgw_session", Value: cookie})
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}
