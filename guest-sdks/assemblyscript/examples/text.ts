// An example hwe step written in AssemblyScript: it finds the "text" string
// in its dependencies' outputs and returns statistics about it. Built into
// workflows/wasm_as_text.wasm by `make wasm-guests`; used from a workflow:
//
//   text_stats = { language = "wasm", module = "wasm_as_text.wasm",
//                  func = "text_stats", depends_on = { "generate" } }

import { JSON } from "assemblyscript-json/assembly";
import * as hwe from "../assembly/index";

function findText(inputs: JSON.Obj): string | null {
  const names = inputs.keys.slice(0);
  names.sort();
  for (let i = 0; i < names.length; i++) {
    const v = inputs.get(names[i]);
    if (v !== null && v.isObj) {
      const text = (<JSON.Obj>v).getString("text");
      if (text !== null) return text.valueOf();
    }
  }
  return null;
}

function isLetter(c: i32): bool {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c == 0x27 || c > 0x7f;
}

// AssemblyScript has no closures, so the sort comparator reads the counts
// from here.
let counts = new Map<string, i32>();

function byCountThenWord(a: string, b: string): i32 {
  const d = counts.get(b) - counts.get(a);
  if (d != 0) return d;
  return a < b ? -1 : a > b ? 1 : 0;
}

export function text_stats(): i32 {
  const text = findText(hwe.inputs());
  if (text === null) {
    return hwe.fail("text_stats needs a dependency that outputs {\"text\": \"...\"}");
  }
  const t = <string>text;
  hwe.log("analysing " + t.length.toString() + " characters of text");

  // Split into lower-cased words; count sentences and vowels on the way.
  const words = new Array<string>();
  let sentences = 0;
  let vowels = 0;
  let start = -1;
  for (let i = 0; i <= t.length; i++) {
    const c = i < t.length ? t.charCodeAt(i) : 0x20;
    if (isLetter(c)) {
      if (start < 0) start = i;
      const l = c | 0x20;
      if (l == 0x61 || l == 0x65 || l == 0x69 || l == 0x6f || l == 0x75) vowels++;
      continue;
    }
    if (start >= 0) {
      words.push(t.substring(start, i).toLowerCase());
      start = -1;
    }
    if (c == 0x2e || c == 0x21 || c == 0x3f) sentences++;
  }

  counts = new Map<string, i32>();
  let longest = "";
  for (let i = 0; i < words.length; i++) {
    const w = words[i];
    counts.set(w, counts.has(w) ? counts.get(w) + 1 : 1);
    if (w.length > longest.length || (w.length == longest.length && w < longest)) longest = w;
  }
  // The five most frequent words, ties broken alphabetically.
  const distinct = counts.keys();
  distinct.sort(byCountThenWord);
  hwe.progress(1.0, "text analysed");

  const out = new hwe.Writer().beginObject();
  out.key("characters").int(t.length);
  out.key("words").int(words.length);
  out.key("distinct_words").int(distinct.length);
  out.key("sentences").int(sentences);
  out.key("vowels").int(vowels);
  out.key("longest_word").string(longest);
  out.key("top_words").beginArray();
  for (let i = 0; i < distinct.length && i < 5; i++) {
    out.beginObject().key("word").string(distinct[i]).key("count").int(counts.get(distinct[i])).endObject();
  }
  out.endArray();
  out.key("computed_by").string("wasm (AssemblyScript guest SDK)");
  hwe.output(out.endObject().toString());
  return 0;
}
