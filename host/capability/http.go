package capability

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hwe-run/hwe/host/api"
)

// HTTPConfig bounds every request a step makes. Zero fields take the defaults.
type HTTPConfig struct {
	Timeout          time.Duration // whole request including the body; default 30s
	MaxResponseBytes int64         // response body cap; default 10 MiB
	MaxRequestBytes  int64         // request body cap; default 10 MiB
	MaxRedirects     int           // default 10; each redirect is checked against the grant
}

const (
	defaultHTTPTimeout      = 30 * time.Second
	defaultMaxResponseBytes = 10 << 20
	defaultMaxRequestBytes  = 10 << 20
	defaultMaxRedirects     = 10
)

func (c HTTPConfig) withDefaults() HTTPConfig {
	if c.Timeout <= 0 {
		c.Timeout = defaultHTTPTimeout
	}
	if c.MaxResponseBytes <= 0 {
		c.MaxResponseBytes = defaultMaxResponseBytes
	}
	if c.MaxRequestBytes <= 0 {
		c.MaxRequestBytes = defaultMaxRequestBytes
	}
	if c.MaxRedirects <= 0 {
		c.MaxRedirects = defaultMaxRedirects
	}
	return c
}

// fetcher performs the HTTP requests of one step attempt.
type fetcher struct {
	cfg    HTTPConfig
	rules  []netRule
	client *http.Client
}

func newFetcher(cfg HTTPConfig, rules []netRule) *fetcher {
	f := &fetcher{cfg: cfg.withDefaults(), rules: rules}
	dialer := &net.Dialer{
		Timeout: 10 * time.Second,
		// Control runs on the address actually being connected to, after DNS
		// resolution, so a granted name that resolves (or re-resolves) to a
		// private address is still refused.
		Control: f.checkDialAddress,
	}
	transport := &http.Transport{
		Proxy:                  nil, // a proxy from the environment would bypass the checks
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    10 * time.Second,
		ResponseHeaderTimeout:  f.cfg.Timeout,
		DisableKeepAlives:      true, // a host lives for one step attempt; leave nothing open
		MaxResponseHeaderBytes: 1 << 20,
	}
	f.client = &http.Client{
		Transport: transport,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > f.cfg.MaxRedirects {
				return &api.LimitError{Limit: "http_redirects", Detail: fmt.Sprintf("more than %d redirects", f.cfg.MaxRedirects)}
			}
			// Every hop must be allowed on its own: an allowed host must not
			// become a way to reach a forbidden one.
			return f.checkURL(req.URL)
		},
	}
	return f
}

// checkURL checks a URL's scheme, host and port against the grant.
func (f *fetcher) checkURL(u *url.URL) error {
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return &api.DeniedError{Capability: "net", Detail: fmt.Sprintf("scheme %q not allowed (http and https only)", u.Scheme)}
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if host == "" {
		return &api.DeniedError{Capability: "net", Detail: fmt.Sprintf("URL %q has no host", u.Redacted())}
	}
	port := defaultPort(scheme)
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return &api.DeniedError{Capability: "net", Detail: fmt.Sprintf("bad port %q", p)}
		}
		port = n
	}
	for _, r := range f.rules {
		if r.matchesURL(scheme, host, port) {
			return nil
		}
	}
	return &api.DeniedError{Capability: "net", Detail: fmt.Sprintf("%s://%s not in the step's net grant", scheme, net.JoinHostPort(host, strconv.Itoa(port)))}
}

// checkDialAddress is the net.Dialer Control hook: the last word on which
// address a step's connection may reach.
func (f *fetcher) checkDialAddress(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &api.DeniedError{Capability: "net", Detail: fmt.Sprintf("cannot check address %q", address)}
	}
	addr := ap.Addr().Unmap()
	if !isSpecialAddress(addr) {
		return nil
	}
	for _, r := range f.rules {
		if r.allowsSpecialAddress(addr, int(ap.Port())) {
			return nil
		}
	}
	return &api.DeniedError{Capability: "net", Detail: fmt.Sprintf("address %s is loopback, private or reserved and not granted by address", net.JoinHostPort(addr.String(), strconv.Itoa(int(ap.Port()))))}
}

func (f *fetcher) fetch(ctx context.Context, in api.HTTPRequest) (*api.HTTPResponse, error) {
	u, err := url.Parse(in.URL)
	if err != nil {
		return nil, fmt.Errorf("http_fetch: bad URL: %w", err)
	}
	if err := f.checkURL(u); err != nil {
		return nil, err
	}
	method := strings.ToUpper(strings.TrimSpace(in.Method))
	if method == "" {
		method = http.MethodGet
	}
	if int64(len(in.Body)) > f.cfg.MaxRequestBytes {
		return nil, &api.LimitError{Limit: "http_request", Detail: fmt.Sprintf("request body larger than %d bytes", f.cfg.MaxRequestBytes)}
	}

	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(in.Body))
	if err != nil {
		return nil, fmt.Errorf("http_fetch: %w", err)
	}
	for k, v := range in.Headers {
		if strings.EqualFold(k, "Host") {
			continue // the URL names the host; a header must not redirect the request
		}
		req.Header.Set(k, v)
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "hwe")
	}

	resp, err := f.client.Do(req)
	if err != nil {
		var denied *api.DeniedError
		if errors.As(err, &denied) {
			return nil, denied
		}
		var limit *api.LimitError
		if errors.As(err, &limit) {
			return nil, limit
		}
		if ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
			return nil, &api.LimitError{Limit: "timeout", Detail: fmt.Sprintf("http_fetch %s did not finish within %s", u.Redacted(), f.cfg.Timeout)}
		}
		return nil, fmt.Errorf("http_fetch: %w", err)
	}
	defer resp.Body.Close()

	body, err := io.ReadAll(io.LimitReader(resp.Body, f.cfg.MaxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("http_fetch: reading the response: %w", err)
	}
	if int64(len(body)) > f.cfg.MaxResponseBytes {
		return nil, &api.LimitError{Limit: "http_response", Detail: fmt.Sprintf("response body larger than %d bytes", f.cfg.MaxResponseBytes)}
	}
	headers := make(map[string]string, len(resp.Header))
	for k, vs := range resp.Header {
		// Lower-case names, as fetch() in JavaScript and most clients show them.
		headers[strings.ToLower(k)] = strings.Join(vs, ", ")
	}
	return &api.HTTPResponse{Status: resp.StatusCode, Headers: headers, Body: body}, nil
}
