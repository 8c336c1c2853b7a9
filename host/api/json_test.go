package api

import "testing"

func TestCanonicalize(t *testing.T) {
	cases := map[string]string{
		`{ "b": 1, "a": [1, 2.50, 1.0] }`:       `{"a":[1,2.50,1.0],"b":1}`,
		`{"html": "<a href='x'>&</a>"}`:         `{"html":"<a href='x'>&</a>"}`,
		`1180591620717411303424`:                `1.1805916207174113e21`,
		`-1180591620717411303424`:               `-1.1805916207174113e21`,
		`18446744073709551615`:                  `18446744073709551615`,
		`-9223372036854775808`:                  `-9223372036854775808`,
		`[123456789012345678901234567890, 1e5]`: `[1.2345678901234568e29,1e5]`,
		``:                                      `null`,
	}
	for in, want := range cases {
		got, err := Canonicalize([]byte(in))
		if err != nil || string(got) != want {
			t.Errorf("Canonicalize(%s) = %s, %v; want %s", in, got, err, want)
		}
	}
	if _, err := Canonicalize([]byte(`{"a":1} {"b":2}`)); err == nil {
		t.Error("two documents accepted")
	}
}

func TestGrantIntersect(t *testing.T) {
	g := Grant{Net: []string{"a:1", "b:2"}, Secrets: []string{"X"}, Memory: 10, KV: true}
	got := g.Intersect(Grant{Net: []string{"a:1"}, Secrets: []string{"*"}, Memory: 5})
	if len(got.Net) != 1 || got.Net[0] != "a:1" || len(got.Secrets) != 1 || got.Memory != 5 || got.KV {
		t.Fatalf("got %+v", got)
	}
	if z := (Grant{Net: []string{"a:1"}}).Intersect(Grant{}); len(z.Net) != 0 {
		t.Fatal("an empty ceiling granted something")
	}
}

func TestNormalizeLanguage(t *testing.T) {
	for in, want := range map[string]string{"js": LangJavaScript, "nodejs": LangJavaScript, "bash": LangShell, "sh": LangShell, "webassembly": LangWasm, "python": LangPython} {
		if got, ok := NormalizeLanguage(in); !ok || got != want {
			t.Errorf("%s -> %s %v", in, got, ok)
		}
	}
	if _, ok := NormalizeLanguage("Python"); ok {
		t.Error("matching must be case-sensitive, as in the reference")
	}
}
