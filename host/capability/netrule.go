package capability

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// A grant's net list is a list of rules, each one of:
//
//	"*"                        any host name, any port, http or https
//	"api.example.com"          that host, any port, http or https
//	"api.example.com:8443"     that host and port, http or https
//	"*.example.com[:port]"     any subdomain of example.com (not example.com itself)
//	"https://api.example.com"  that scheme and host on the scheme's default port
//	"https://api.example.com:8443"
//	"127.0.0.1[:port]", "[::1]:8080", "10.0.0.0/8[:port]"
//	                           addresses: the only way to reach loopback,
//	                           private, link-local and other special addresses
//
// A URL is allowed when some rule matches its scheme, host and port. Then,
// when the connection is made, every address the host name resolved to is
// checked again: public addresses pass, special ones pass only if an address
// or CIDR rule (with a matching port) names them. "*" never opens special
// addresses, so a granted name that resolves to 127.0.0.1 is still refused.

// netRule is one parsed entry of a grant's net list.
type netRule struct {
	raw    string
	scheme string       // "" = http or https
	host   string       // lower-case name, "*" or "*.suffix"; "" for address rules
	prefix netip.Prefix // valid for address rules
	port   int          // 0 = any
}

func parseNetRules(entries []string) ([]netRule, error) {
	rules := make([]netRule, 0, len(entries))
	for _, e := range entries {
		r, err := parseNetRule(e)
		if err != nil {
			return nil, err
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// ParseNetRule checks one net grant entry; policy and validation use it to
// report bad entries before anything runs.
func ParseNetRule(entry string) error {
	_, err := parseNetRule(entry)
	return err
}

func parseNetRule(entry string) (netRule, error) {
	r := netRule{raw: entry}
	s := strings.TrimSpace(entry)
	if s == "" {
		return r, fmt.Errorf("empty net rule")
	}
	if scheme, rest, ok := strings.Cut(s, "://"); ok {
		scheme = strings.ToLower(scheme)
		if scheme != "http" && scheme != "https" {
			return r, fmt.Errorf("net rule %q: scheme must be http or https", entry)
		}
		r.scheme = scheme
		s = strings.TrimSuffix(rest, "/")
		if strings.ContainsAny(s, "/?#") && !looksLikeCIDR(s) {
			return r, fmt.Errorf("net rule %q: a rule names a host, not a path", entry)
		}
	}
	if s == "*" {
		r.host = "*"
		return r, nil
	}

	hostPart, portPart := splitHostPortLoose(s)
	if portPart != "" {
		p, err := strconv.Atoi(portPart)
		if err != nil || p < 1 || p > 65535 {
			return r, fmt.Errorf("net rule %q: bad port %q", entry, portPart)
		}
		r.port = p
	} else if r.scheme != "" {
		r.port = defaultPort(r.scheme)
	}

	if pfx, err := netip.ParsePrefix(hostPart); err == nil {
		r.prefix = pfx.Masked()
		return r, nil
	}
	if addr, err := netip.ParseAddr(hostPart); err == nil {
		addr = addr.Unmap()
		r.prefix = netip.PrefixFrom(addr, addr.BitLen())
		return r, nil
	}
	host := strings.TrimSuffix(strings.ToLower(hostPart), ".")
	if host == "" {
		return r, fmt.Errorf("net rule %q: no host", entry)
	}
	name := strings.TrimPrefix(host, "*.")
	if strings.Contains(name, "*") || !validHostName(name) {
		return r, fmt.Errorf("net rule %q: bad host name", entry)
	}
	r.host = host
	return r, nil
}

// splitHostPortLoose splits "host:port", "[v6]:port", "v6", "cidr:port".
func splitHostPortLoose(s string) (host, port string) {
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]")
		if end < 0 {
			return s, ""
		}
		host = s[1:end]
		rest := s[end+1:]
		if strings.HasPrefix(rest, ":") {
			port = rest[1:]
		}
		return host, port
	}
	if strings.Count(s, ":") > 1 { // bare IPv6 address or prefix, no port
		return s, ""
	}
	if h, p, ok := strings.Cut(s, ":"); ok {
		return h, p
	}
	return s, ""
}

func looksLikeCIDR(s string) bool {
	h, _ := splitHostPortLoose(s)
	_, err := netip.ParsePrefix(h)
	return err == nil
}

func validHostName(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

func defaultPort(scheme string) int {
	if scheme == "https" {
		return 443
	}
	return 80
}

func (r netRule) isAddress() bool { return r.prefix.IsValid() }

func (r netRule) matchesSchemePort(scheme string, port int) bool {
	return (r.scheme == "" || r.scheme == scheme) && (r.port == 0 || r.port == port)
}

// matchesURL reports whether the rule allows a URL's scheme, host and port.
// host is lower-case without brackets.
func (r netRule) matchesURL(scheme, host string, port int) bool {
	if !r.matchesSchemePort(scheme, port) {
		return false
	}
	if r.isAddress() {
		addr, err := netip.ParseAddr(host)
		return err == nil && r.prefix.Contains(addr.Unmap())
	}
	switch {
	case r.host == "*":
		return true
	case strings.HasPrefix(r.host, "*."):
		return strings.HasSuffix(host, r.host[1:])
	default:
		return host == r.host
	}
}

// allowsSpecialAddress reports whether the rule explicitly opens a special
// (loopback, private, ...) address on a port.
func (r netRule) allowsSpecialAddress(addr netip.Addr, port int) bool {
	return r.isAddress() && (r.port == 0 || r.port == port) && r.prefix.Contains(addr)
}

// specialPrefixes are ranges a step may only reach when the grant names them
// by address: everything that is not the public internet.
var specialPrefixes = mustPrefixes(
	"0.0.0.0/8",       // "this network"
	"100.64.0.0/10",   // carrier-grade NAT
	"192.0.0.0/24",    // IETF protocol assignments
	"192.0.2.0/24",    // documentation
	"198.18.0.0/15",   // benchmarking
	"198.51.100.0/24", // documentation
	"203.0.113.0/24",  // documentation
	"240.0.0.0/4",     // reserved, includes broadcast
	"64:ff9b::/96",    // NAT64: embeds an IPv4 address
	"64:ff9b:1::/48",  // local-use NAT64
	"2001::/32",       // Teredo: embeds an IPv4 address
	"2001:db8::/32",   // documentation
	"2002::/16",       // 6to4: embeds an IPv4 address
	"100::/64",        // discard
	"::/128",          // unspecified
)

func mustPrefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// isSpecialAddress reports whether addr is anything but a public unicast
// address: loopback, private, link-local (cloud metadata lives there),
// multicast, unspecified, or a reserved or translation range.
func isSpecialAddress(addr netip.Addr) bool {
	addr = addr.Unmap()
	if addr.IsLoopback() || addr.IsPrivate() || addr.IsLinkLocalUnicast() ||
		addr.IsLinkLocalMulticast() || addr.IsInterfaceLocalMulticast() ||
		addr.IsMulticast() || addr.IsUnspecified() {
		return true
	}
	for _, p := range specialPrefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// NetRuleCovers reports whether the ceiling rule allows everything the
// requested rule would (both in the grammar above). Policies use it to
// intersect a step's net request with their own list: "*" in a ceiling
// covers any host name and public address but never a loopback, private or
// other special range, which a ceiling must name by address or CIDR.
func NetRuleCovers(ceiling, request string) bool {
	c, err := parseNetRule(ceiling)
	if err != nil {
		return false
	}
	r, err := parseNetRule(request)
	if err != nil {
		return false
	}
	if c.scheme != "" && c.scheme != r.scheme {
		return false
	}
	if c.port != 0 && c.port != r.port {
		return false
	}
	switch {
	case r.isAddress():
		if c.isAddress() {
			return c.prefix.Bits() <= r.prefix.Bits() && c.prefix.Contains(r.prefix.Addr())
		}
		// A name ceiling covers only single public addresses, and only "*".
		return c.host == "*" && r.prefix.IsSingleIP() && !isSpecialAddress(r.prefix.Addr())
	case c.isAddress():
		return false
	case c.host == "*":
		return true
	case r.host == "*":
		return false
	case strings.HasPrefix(c.host, "*."):
		suffix := c.host[1:] // ".example.com"
		return strings.HasSuffix(strings.TrimPrefix(r.host, "*"), suffix) && r.host != c.host[2:]
	default:
		return c.host == r.host
	}
}
