// A small Lua tokenizer for highlighting workflow sources. It splits the
// whole text into tokens that cover it exactly (joining every token's text
// gives the source back), so the highlighted copy lines up with the
// textarea character for character. Pure: tested under node.

const KEYWORDS = new Set([
  "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in",
  "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
]);

// longBracket matches [[ ... ]] or [==[ ... ]==] at i; returns its end or -1.
function longBracket(src, i) {
  const m = /^\[(=*)\[/.exec(src.slice(i, i + 64));
  if (!m) return -1;
  const close = "]" + m[1] + "]";
  const j = src.indexOf(close, i + m[0].length);
  return j < 0 ? src.length : j + close.length;
}

// tokenize returns [{type, text}] with type one of kw, str, num, com, fn, id, op, ws.
export function tokenize(src) {
  const out = [];
  let i = 0;
  const push = (type, end) => {
    out.push({ type, text: src.slice(i, end) });
    i = end;
  };
  while (i < src.length) {
    const c = src[i];
    if (src.startsWith("--", i)) {
      const lb = src[i + 2] === "[" ? longBracket(src, i + 2) : -1;
      if (lb >= 0) push("com", lb);
      else {
        const nl = src.indexOf("\n", i);
        push("com", nl < 0 ? src.length : nl);
      }
    } else if (c === "[" && (src[i + 1] === "[" || src[i + 1] === "=")) {
      const lb = longBracket(src, i);
      if (lb >= 0) push("str", lb);
      else push("op", i + 1);
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < src.length && src[j] !== c && src[j] !== "\n") j += src[j] === "\\" ? 2 : 1;
      push("str", j < src.length && src[j] === c ? j + 1 : Math.min(j, src.length));
    } else if (/[0-9]/.test(c) || (c === "." && /[0-9]/.test(src[i + 1] || ""))) {
      const m = /^(0[xX][0-9a-fA-F.]+([pP][+-]?\d+)?|[0-9]*\.?[0-9]+([eE][+-]?[0-9]+)?)/.exec(src.slice(i));
      push("num", i + Math.max(1, m ? m[0].length : 1));
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i));
      const word = m[0];
      let type = KEYWORDS.has(word) ? "kw" : "id";
      if (type === "id" && /^\s*\(/.test(src.slice(i + word.length, i + word.length + 32))) type = "fn";
      push(type, i + word.length);
    } else if (/\s/.test(c)) {
      const m = /^\s+/.exec(src.slice(i));
      push("ws", i + m[0].length);
    } else {
      push("op", i + 1);
    }
  }
  return out;
}
