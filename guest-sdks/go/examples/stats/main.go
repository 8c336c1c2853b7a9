// Command stats is an example hwe step written in Go: it takes the numbers
// produced by any of its dependencies ({"numbers": [...]}) and returns their
// statistics. Build it with `make wasm-guests` (see plugins/wasm/wasm.mk):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o stats.wasm .
//
// and use it from a workflow:
//
//	stats = { language = "wasm", module = "wasm_go_stats.wasm", func = "stats",
//	          depends_on = { "generate" } }
package main

import (
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/hwe-run/hwe/guest-sdks/go/hwe"
)

type summary struct {
	Source   string    `json:"source"`
	Count    int       `json:"count"`
	Sum      float64   `json:"sum"`
	Mean     float64   `json:"mean"`
	Median   float64   `json:"median"`
	Min      float64   `json:"min"`
	Max      float64   `json:"max"`
	StdDev   float64   `json:"stddev"`
	Primes   []int     `json:"primes"`
	Sorted   []float64 `json:"sorted"`
	Computed string    `json:"computed_by"`
}

//go:wasmexport stats
func stats() int32 {
	return hwe.Run(func(in hwe.Inputs) (any, error) {
		source, numbers, err := findNumbers(in)
		if err != nil {
			return nil, err
		}
		hwe.Logf("computing statistics of %d numbers from %s", len(numbers), source)
		s := summarize(numbers)
		s.Source = source
		_ = hwe.Progress(1, "statistics computed")
		return s, nil
	})
}

// findNumbers returns the "numbers" list of the first dependency (by name)
// that has one.
func findNumbers(in hwe.Inputs) (string, []float64, error) {
	names := make([]string, 0, len(in))
	for name := range in {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		var v struct{ Numbers []float64 }
		if err := in.Decode(name, &v); err == nil && len(v.Numbers) > 0 {
			return name, v.Numbers, nil
		}
	}
	if len(names) == 0 {
		return "", nil, errors.New("stats needs a dependency that outputs {\"numbers\": [...]}")
	}
	return "", nil, fmt.Errorf("none of the inputs %v has a non-empty \"numbers\" list", names)
}

func summarize(numbers []float64) summary {
	sorted := append([]float64(nil), numbers...)
	sort.Float64s(sorted)
	s := summary{Count: len(sorted), Min: sorted[0], Max: sorted[len(sorted)-1], Sorted: sorted,
		Primes: []int{}, Computed: "wasm (Go guest SDK)"}
	for _, x := range sorted {
		s.Sum += x
		if x == math.Trunc(x) && isPrime(int(x)) {
			s.Primes = append(s.Primes, int(x))
		}
	}
	s.Mean = s.Sum / float64(s.Count)
	if n := len(sorted); n%2 == 1 {
		s.Median = sorted[n/2]
	} else {
		s.Median = (sorted[n/2-1] + sorted[n/2]) / 2
	}
	var sq float64
	for _, x := range sorted {
		sq += (x - s.Mean) * (x - s.Mean)
	}
	s.StdDev = math.Round(math.Sqrt(sq/float64(s.Count))*1000) / 1000
	return s
}

func isPrime(n int) bool {
	if n < 2 {
		return false
	}
	for d := 2; d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}

func main() {}
