package proc

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hwe-run/hwe/host/api"
)

func TestEnvIsBuiltFromNothing(t *testing.T) {
	t.Setenv("HWE_PROC_TEST_HOST", "leak")
	got := Env("", "/home/step", map[string]string{"A": "1", "HOME": "/custom", "BAD=NAME": "x", "NUL": "a\x00b"}, map[string]string{"INPUT_X": `{"k":"it's"}`})
	want := []string{"A=1", "HOME=/custom", `INPUT_X={"k":"it's"}`, "LANG=C.UTF-8", "PATH=" + DefaultPATH}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}

func TestReadLines(t *testing.T) {
	var got []string
	ReadLines(strings.NewReader("a\nb\r\n\nlast"), func(line string, complete bool) {
		if !complete {
			line += "(partial)"
		}
		got = append(got, line)
	})
	if want := []string{"a", "b\r", "", "last(partial)"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q", got)
	}
}

func TestCaptureLimit(t *testing.T) {
	c := Capture{Limit: 8}
	c.Add("abc", true)
	c.Add("defg", true)
	c.Add("h", false)
	if c.String() != "abc\n" || !c.Truncated {
		t.Fatalf("%q %v", c.String(), c.Truncated)
	}
}

func TestScratchFolders(t *testing.T) {
	s := &Scratch{Root: t.TempDir()}
	dir, cleanup, err := s.StepDir(&api.StepRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("%v %v", st, err)
	}
	cleanup()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatal("step folder not removed")
	}
	given, _, _ := s.StepDir(&api.StepRequest{TempDir: "/run/x"})
	if given != "/run/x" {
		t.Fatalf("TempDir not used: %s", given)
	}
	kept, _ := s.MakeDir("w-")
	_ = os.MkdirAll(filepath.Join(kept, "sub", "deep"), 0o755)
	_ = os.WriteFile(filepath.Join(kept, "f"), []byte("x"), 0o644)
	_ = os.Chmod(kept, 0o777)
	if err := EmptyDir(kept); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(kept)
	if st, _ := os.Stat(kept); len(entries) != 0 || st.Mode().Perm() != 0o700 {
		t.Fatalf("not emptied: %v %v", entries, st.Mode())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(kept)); !os.IsNotExist(err) {
		t.Fatal("parent folder left behind")
	}
	if _, err := s.MakeDir("late-"); err == nil {
		t.Fatal("MakeDir after Close succeeded")
	}
}

func TestProfileIgnoresPerCallGrants(t *testing.T) {
	a := Profile(api.Grant{Net: []string{"example.com:443"}, Env: []string{"X"}, Secrets: []string{"s"}, KV: true})
	b := Profile(api.Grant{Net: []string{"example.com:443"}})
	c := Profile(api.Grant{Net: []string{"other.com:443"}})
	if a != b || a == c {
		t.Fatalf("%s %s %s", a, b, c)
	}
}
