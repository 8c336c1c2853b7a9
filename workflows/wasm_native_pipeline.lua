-- WebAssembly steps that compute from their inputs (hwe's native convention).
--
-- A module built with one of hwe's guest SDKs imports Extism's kernel, so
-- hwe calls it the native way: the step's inputs arrive as one JSON object
-- keyed by dependency name, and what the function outputs is the step's
-- output. Here a Go step (guest-sdks/go/examples/stats, built into
-- wasm_go_stats.wasm) and an AssemblyScript step
-- (guest-sdks/assemblyscript/examples/text.ts, built into wasm_as_text.wasm)
-- work on what Python generated, and JavaScript and Python use their results.
--
-- WASM steps run in-process in a sandbox: no files, network, environment or
-- secrets unless the step's `allow` grants them, a memory cap and a timeout.
workflow = {
  name = "wasm_native_pipeline",
  description = "Python generates numbers and text, Go and AssemblyScript WebAssembly steps analyse them, JavaScript and Python report",

  steps = {
    generate = {
      language = "python",
      code = [[
def run():
    # A deterministic sample: the first 24 values of a linear congruential
    # sequence, and a short text.
    numbers, x = [], 7
    for _ in range(24):
        x = (x * 37 + 11) % 101
        numbers.append(x)
    text = ("WebAssembly runs the same module everywhere. The module cannot "
            "touch files or the network unless the step is allowed to. "
            "The host decides what the module may do!")
    print(f"generated {len(numbers)} numbers and {len(text.split())} words")
    return {"numbers": numbers, "text": text}
]],
    },

    -- Go guest: count, sum, mean, median, min, max, stddev, primes.
    stats = {
      language = "wasm",
      module = "wasm_go_stats.wasm",
      func = "stats",
      depends_on = { "generate" },
      timeout = "30s",
    },

    -- AssemblyScript guest: words, sentences, vowels, top words.
    text_stats = {
      language = "wasm",
      module = "wasm_as_text.wasm",
      func = "text_stats",
      depends_on = { "generate" },
      timeout = "10s",
    },

    combine = {
      language = "javascript",
      depends_on = { "stats", "text_stats" },
      code = [[
function run(inputs) {
  const s = inputs.stats;
  const t = inputs.text_stats;
  // Values more than 1.5 standard deviations from the mean.
  const outliers = s.sorted.filter((x) => Math.abs(x - s.mean) > 1.5 * s.stddev);
  const spread = s.max - s.min;
  console.log(`${s.count} numbers, ${t.words} words, ${outliers.length} outliers`);
  return {
    numbers: {
      count: s.count,
      mean: s.mean,
      median: s.median,
      spread,
      prime_share: Number((s.primes.length / s.count).toFixed(3)),
      outliers,
    },
    text: {
      words: t.words,
      sentences: t.sentences,
      words_per_sentence: Number((t.words / t.sentences).toFixed(2)),
      top_word: t.top_words[0].word,
    },
    computed_by: [s.computed_by, t.computed_by, "javascript"],
  };
}
]],
    },

    report = {
      language = "python",
      depends_on = { "combine", "stats", "text_stats" },
      code = [[
def run(inputs):
    combined = inputs["combine"]
    stats = inputs["stats"]
    text = inputs["text_stats"]
    checks = {
        # The Go step's sum must match its own count and mean.
        "sum_matches_mean": abs(stats["sum"] - stats["mean"] * stats["count"]) < 1e-9,
        "sorted_is_sorted": stats["sorted"] == sorted(stats["sorted"]),
        "top_words_ranked": all(a["count"] >= b["count"] for a, b in zip(text["top_words"], text["top_words"][1:])),
    }
    print("Native WebAssembly pipeline report")
    print(f"  numbers: mean {stats['mean']:.2f}, median {stats['median']}, stddev {stats['stddev']}")
    print(f"  primes:  {stats['primes']}")
    print(f"  text:    {text['words']} words, {text['sentences']} sentences, top word '{combined['text']['top_word']}'")
    print(f"  checks:  {'all passed' if all(checks.values()) else checks}")
    return {
        "status": "ok" if all(checks.values()) else "check_failed",
        "checks": checks,
        "numbers": combined["numbers"],
        "text": combined["text"],
        "languages": ["python", "wasm (Go)", "wasm (AssemblyScript)", "javascript"],
    }
]],
    },
  },
}
